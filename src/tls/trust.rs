//! Telling the operator about a new CA: where it is and how clients come to trust it.

use std::path::Path;

use crate::tls::{
    Ca, CaOptions, TlsError,
    ca::{CA_CERT_FILE, CA_KEY_FILE},
};

/// `sluis ca init`: creates the CA in `dir` and returns the message to print.
pub fn init_command(dir: &Path, options: &CaOptions) -> Result<String, TlsError> {
    let ca = Ca::init(dir, options)?;
    Ok(describe_new_ca(&ca, dir))
}

/// What to print after creating a CA in `dir` (by `sluis ca init` or on first `sluis run`).
pub fn describe_new_ca(ca: &Ca, dir: &Path) -> String {
    let cert = dir.join(CA_CERT_FILE);
    let key = dir.join(CA_KEY_FILE);
    let not_after = ca.not_after();
    format!(
        "Created the interception CA.\n\
         \x20 certificate: {cert}\n\
         \x20 private key: {key} (mode 0600; anyone holding it can impersonate any site)\n\
         \x20 subject:     {subject}\n\
         \x20 valid until: {year}-{month:02}-{day:02}\n\
         \x20 SHA-256:     {fingerprint}\n\
         Clients must trust this CA before their HTTPS traffic can be inspected:\n{trust}",
        cert = cert.display(),
        key = key.display(),
        subject = ca.subject(),
        year = not_after.year(),
        month = u8::from(not_after.month()),
        day = not_after.day(),
        fingerprint = ca.fingerprint_sha256(),
        trust = trust_instructions(&cert),
    )
}

/// One line each on how to trust the CA at `ca_pem`: Firefox, Chromium on Linux, the Debian
/// system store, curl.
pub fn trust_instructions(ca_pem: &Path) -> String {
    let pem = shell_quote(&ca_pem.display().to_string());
    let absolute = std::path::absolute(ca_pem).unwrap_or_else(|_| ca_pem.to_owned());
    let json_path = serde_json::to_string(&absolute.display().to_string()).unwrap_or_default();
    let nick = "'sluis interception CA'";
    [
        format!(
            "  Firefox:  certutil -A -n {nick} -t C,, -i {pem} -d sql:$HOME/.mozilla/firefox/<profile> \
             (all profiles: policies.json {{\"policies\": {{\"Certificates\": {{\"Install\": [{json_path}]}}}}}})"
        ),
        format!("  Chromium: certutil -A -n {nick} -t C,, -i {pem} -d sql:$HOME/.pki/nssdb"),
        format!(
            "  System:   sudo cp {pem} /usr/local/share/ca-certificates/sluis.crt && sudo update-ca-certificates"
        ),
        format!("  curl:     curl --proxy http://<proxy>:<port> --cacert {pem} https://example.org/"),
    ]
    .join("\n")
}

/// Quotes `s` for a POSIX shell when it holds anything beyond a safe set of characters.
fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
