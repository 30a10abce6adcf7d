//! Document metadata: Info dictionary strings, the XMP packet, and Microsoft sensitivity labels.
//!
//! Purview labels a PDF by writing `MSIP_Label_<GUID>_<Attr>` properties into the XMP packet
//! (and some tools into the Info dictionary). `_Name` carries the label's name and the key the
//! GUID; the policy maps names first, then GUIDs, to KSP levels, as for Office files.

use memchr::memmem;

use super::content::push_latin1;
use super::obj::Obj;
use crate::inspect::engine::LabelTable;
use crate::inspect::report::LabelSource;
use crate::inspect::sink::{ContentSink, TextOrigin};

const MSIP: &[u8] = b"MSIP_Label_";
const GUID_LEN: usize = 36;
/// Labels read per metadata source; one per tenant is normal.
const MAX_LABELS: usize = 16;

/// The attributes of one label, as far as they were found.
#[derive(Debug, Default)]
struct Label {
    guid: String,
    name: Option<String>,
    enabled: Option<bool>,
}

#[derive(Debug, Default)]
struct Labels(Vec<Label>);

/// Handles a dictionary that may be the Info dictionary (or an outline item: its title is
/// visible text too). `push_text` is false when the strings are likely encrypted.
pub(super) fn info_dict(
    dict: &Obj,
    push_text: bool,
    table: &LabelTable,
    sink: &mut dyn ContentSink,
) {
    let mut labels = Labels::default();
    for (key, value) in dict.entries() {
        let Some(bytes) = value.bytes() else {
            continue;
        };
        match key.as_slice() {
            b"Title" | b"Subject" | b"Keywords" if push_text => {
                sink.text(text_string(bytes).as_bytes(), TextOrigin::Metadata);
                sink.end_text();
            }
            _ => {
                if let Some(rest) = key.strip_prefix(MSIP) {
                    labels.attribute(rest, &text_string(bytes));
                }
            }
        }
    }
    labels.report(table, sink);
}

/// Handles a complete XMP packet: label properties, and its text nodes as metadata text.
pub(super) fn xmp(packet: &[u8], table: &LabelTable, sink: &mut dyn ContentSink) {
    let is_xmp = [&b"<x:xmpmeta"[..], b"<?xpacket", b"<rdf:RDF"]
        .iter()
        .any(|marker| memmem::find(packet, marker).is_some());
    if !is_xmp {
        return;
    }
    let mut labels = Labels::default();
    for at in memmem::find_iter(packet, MSIP) {
        let rest = packet.get(at + MSIP.len()..).unwrap_or_default();
        let attr_end = rest
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'))
            .unwrap_or(rest.len());
        let (key, after) = rest.split_at(attr_end);
        if let Some(value) = xml_value(after) {
            labels.attribute(key, &unescape(value));
        }
    }
    labels.report(table, sink);
    let mut text = Vec::new();
    for node in packet.split(|&b| b == b'<') {
        let Some(gt) = memchr::memchr(b'>', node) else {
            continue;
        };
        let content = node.get(gt + 1..).unwrap_or_default().trim_ascii();
        if !content.is_empty() {
            text.extend_from_slice(unescape(content).as_bytes());
            text.push(b'\n');
        }
    }
    if !text.is_empty() {
        sink.text(&text, TextOrigin::Metadata);
        sink.end_text();
    }
}

/// The value after a property name: element content (`>value<`) or an attribute (`="value"`).
/// A closing tag (`>` then whitespace or `<`) has none.
fn xml_value(after: &[u8]) -> Option<&[u8]> {
    let (&first, rest) = after.split_first()?;
    match first {
        b'>' => {
            let end = memchr::memchr(b'<', rest)?;
            let value = rest.get(..end)?.trim_ascii();
            (!value.is_empty()).then_some(value)
        }
        b'=' => {
            let rest = rest.trim_ascii_start();
            let (&quote, rest) = rest.split_first()?;
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            rest.get(..memchr::memchr(quote, rest)?)
        }
        _ => None,
    }
}

/// A PDF text string: UTF-16BE with a BOM, UTF-8 with a BOM, or PDFDocEncoding (taken as
/// Latin-1, which it matches for letters).
pub(super) fn text_string(bytes: &[u8]) -> String {
    if let Some(utf16) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        let units = utf16
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
        return char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
    }
    if let Some(utf8) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(utf8).into_owned();
    }
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        push_latin1(&mut out, b);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unescape(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

// === impl Labels ===

impl Labels {
    /// Records `<GUID>_<Attr>` = value.
    fn attribute(&mut self, key: &[u8], value: &str) {
        let (Some(guid), Some(attr)) = (key.get(..GUID_LEN), key.get(GUID_LEN + 1..)) else {
            return;
        };
        if key.get(GUID_LEN) != Some(&b'_') || !is_guid(guid) {
            return;
        }
        let guid = String::from_utf8_lossy(guid).to_ascii_lowercase();
        let index = match self.0.iter().position(|l| l.guid == guid) {
            Some(i) => i,
            None if self.0.len() < MAX_LABELS => {
                self.0.push(Label {
                    guid,
                    ..Label::default()
                });
                self.0.len() - 1
            }
            None => return,
        };
        let Some(label) = self.0.get_mut(index) else {
            return;
        };
        match attr {
            b"Name" if label.name.is_none() => label.name = Some(value.trim().to_lowercase()),
            b"Enabled" if label.enabled.is_none() => {
                label.enabled = Some(value.trim().eq_ignore_ascii_case("true"));
            }
            _ => {}
        }
    }

    fn report(&self, table: &LabelTable, sink: &mut dyn ContentSink) {
        for label in &self.0 {
            if label.enabled == Some(false) {
                continue;
            }
            let by_name = label.name.as_ref().and_then(|n| table.names.get(n));
            if let Some(level) = by_name.or_else(|| table.guids.get(&label.guid)) {
                sink.label(*level, LabelSource::Metadata);
            }
        }
    }
}

fn is_guid(guid: &[u8]) -> bool {
    guid.iter().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => *b == b'-',
        _ => b.is_ascii_hexdigit(),
    })
}
