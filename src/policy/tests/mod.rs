mod default_policy;

use std::path::PathBuf;

pub(super) fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies")
}
