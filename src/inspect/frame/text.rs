//! Parts of a body that are text, not files: form fields, URL-encoded forms, JSON.

use crate::inspect::frame::Out;
use crate::inspect::frame::form::UrlForm;
use crate::inspect::frame::json::JsonText;
use crate::inspect::frame::mime::MediaType;

pub(crate) enum TextBody {
    Plain,
    Form(UrlForm),
    Json(Box<JsonText>),
}

// === impl TextBody ===

impl TextBody {
    pub(crate) fn for_media(media: Option<&MediaType>) -> Self {
        match media {
            Some(m) if m.is_json() => Self::Json(Box::new(JsonText::new())),
            Some(m) if m.is_form() => Self::Form(UrlForm::default()),
            _ => Self::Plain,
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8], out: &mut Out<'_>) {
        match self {
            Self::Plain => out.text(data),
            Self::Form(f) => f.feed(data, out),
            Self::Json(j) => j.feed(data, out),
        }
    }

    pub(crate) fn finish(self, out: &mut Out<'_>) {
        match self {
            Self::Plain => out.end_text(),
            Self::Form(f) => f.finish(out),
            Self::Json(j) => j.finish(out),
        }
    }
}
