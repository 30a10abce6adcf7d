//! The page a blocked employee sees: what was stopped, why (in Dutch and English), which rule
//! and KSP section, an incident id that matches the audit event, and whom to ask. Browsers get
//! HTML; API clients and scripts get JSON with the same facts.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::proxy::body::{self, ProxyBody};

/// Everything a block page shows. No content of the request: only what the employee did and
/// what the policy says about it.
#[derive(Debug, Clone)]
pub(crate) struct BlockInfo {
    pub(crate) incident: String,
    pub(crate) rule_id: String,
    pub(crate) ksp: String,
    pub(crate) reason_nl: String,
    pub(crate) reason_en: String,
    /// `POST https://www.dropbox.com/upload`
    pub(crate) request: String,
    /// File names involved, when a content rule decided.
    pub(crate) files: Vec<String>,
    /// Whom to ask, e.g. "Servicedesk Security, security@example.com".
    pub(crate) contact: String,
}

/// Renders the block response for a client that sent `accept`.
pub(crate) fn render(info: &BlockInfo, accept: Option<&HeaderValue>) -> Response<ProxyBody> {
    let wants_html = accept
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let (content_type, text) = if wants_html {
        ("text/html; charset=utf-8", html(info))
    } else {
        ("application/json", json(info))
    };
    let mut res = Response::new(body::full(text));
    *res.status_mut() = StatusCode::FORBIDDEN;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    if let Ok(v) = HeaderValue::from_str(&info.incident) {
        h.insert("sluis-incident", v);
    }
    res
}

fn json(info: &BlockInfo) -> String {
    serde_json::json!({
        "blocked": true,
        "incident": info.incident,
        "rule": info.rule_id,
        "ksp": info.ksp,
        "reason": { "nl": info.reason_nl, "en": info.reason_en },
        "request": info.request,
        "files": info.files,
        "contact": info.contact,
    })
    .to_string()
}

fn html(info: &BlockInfo) -> String {
    let e = escape;
    let files = if info.files.is_empty() {
        String::new()
    } else {
        let items: String = info
            .files
            .iter()
            .map(|f| format!("<li><code>{}</code></li>", e(f)))
            .collect();
        format!("<p>Bestanden / Files:</p><ul>{items}</ul>")
    };
    format!(
        r#"<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Geblokkeerd / Blocked</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.5}}
h1{{font-size:1.5rem;margin-bottom:.25rem}} .en{{color:#555}} .box{{border-left:4px solid #c00;padding:.5rem 1rem;background:#fafafa}}
dl{{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}} dt{{font-weight:600}} code{{word-break:break-all}}
</style></head><body>
<h1>Deze verzending is geblokkeerd</h1>
<p class="en">This transfer was blocked</p>
<div class="box">
<p lang="nl">{reason_nl}</p>
<p lang="en" class="en">{reason_en}</p>
</div>
<dl>
<dt>Verzoek / Request</dt><dd><code>{request}</code></dd>
<dt>Regel / Rule</dt><dd><code>{rule}</code></dd>
<dt>KSP</dt><dd>{ksp}</dd>
<dt>Incident</dt><dd><code id="incident">{incident}</code></dd>
</dl>
{files}
<p>Denk je dat dit onterecht is? Neem contact op met {contact} en noem het incidentnummer.<br>
<span class="en">Think this is wrong? Contact {contact} and quote the incident id.</span></p>
</body></html>
"#,
        reason_nl = e(&info.reason_nl),
        reason_en = e(&info.reason_en),
        request = e(&info.request),
        rule = e(&info.rule_id),
        ksp = e(&info.ksp),
        incident = e(&info.incident),
        contact = e(&info.contact),
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    fn info() -> BlockInfo {
        BlockInfo {
            incident: "K7Q2M4".into(),
            rule_id: "ksp-1.4-cloud-upload".into(),
            ksp: "1.4".into(),
            reason_nl: "Geen bedrijfsinformatie naar publieke cloud.".into(),
            reason_en: "No company information to public cloud.".into(),
            request: "POST https://www.dropbox.com/upload?<script>".into(),
            files: vec!["<img src=x onerror=alert(1)>.docx".into()],
            contact: "Servicedesk <security@example.com>".into(),
        }
    }

    async fn text(res: Response<ProxyBody>) -> String {
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn browsers_get_an_escaped_bilingual_page() {
        let res = render(
            &info(),
            Some(&HeaderValue::from_static("text/html,application/xhtml+xml")),
        );
        assert_eq!(res.status(), 403);
        assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(res.headers()["sluis-incident"], "K7Q2M4");
        let page = text(res).await;
        assert!(page.contains("Deze verzending is geblokkeerd"));
        assert!(page.contains("This transfer was blocked"));
        assert!(page.contains("<code id=\"incident\">K7Q2M4</code>"));
        assert!(page.contains("ksp-1.4-cloud-upload"));
        assert!(
            !page.contains("<script>") && !page.contains("<img"),
            "unescaped input in the page"
        );
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;.docx"));
    }

    #[tokio::test]
    async fn others_get_json() {
        let res = render(&info(), Some(&HeaderValue::from_static("application/json")));
        assert_eq!(res.headers()["content-type"], "application/json");
        let v: serde_json::Value = serde_json::from_str(&text(res).await).unwrap();
        assert_eq!(v["blocked"], true);
        assert_eq!(v["incident"], "K7Q2M4");
        assert_eq!(v["reason"]["en"], "No company information to public cloud.");
        let res = render(&info(), None);
        assert_eq!(res.headers()["content-type"], "application/json");
    }
}
