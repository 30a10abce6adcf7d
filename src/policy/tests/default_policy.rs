use super::shipped;
use crate::policy::cli;

#[test]
fn shipped_policy_checks() {
    let mut out = Vec::new();
    let code = cli::check(&shipped(), &mut out);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{text}");
}
