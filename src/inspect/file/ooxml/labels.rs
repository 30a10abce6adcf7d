//! Sensitivity labels in OOXML metadata: the MIP custom properties and LabelInfo.xml.

use crate::inspect::file::ScanCx;
use crate::inspect::file::xml::{Tag, XmlHandler};
use crate::inspect::report::{LabelSource, Level};
use crate::inspect::sink::TextOrigin;

/// Custom properties kept per document; a labelled file has a handful.
const MAX_PROPS: usize = 256;
/// Longest property value kept (names, GUIDs and dates are short).
const MAX_VALUE: usize = 512;

/// `docProps/custom.xml`: `<property name="MSIP_Label_<guid>_Enabled"><vt:lpwstr>true</…>`.
#[derive(Debug, Default)]
pub(super) struct CustomProps {
    props: Vec<(Vec<u8>, Vec<u8>)>,
    /// Inside a `property` element.
    current: Option<(Vec<u8>, Vec<u8>)>,
}

impl XmlHandler for CustomProps {
    fn start(&mut self, name: &[u8], tag: &Tag<'_>, _cx: &mut ScanCx<'_>) {
        if name == b"property" {
            let prop = tag
                .attr(b"name")
                .map(|n| n.into_owned())
                .unwrap_or_default();
            self.current = Some((prop, Vec::new()));
        }
    }

    fn end(&mut self, name: &[u8], _cx: &mut ScanCx<'_>) {
        if name == b"property"
            && let Some(prop) = self.current.take()
            && self.props.len() < MAX_PROPS
        {
            self.props.push(prop);
        }
    }

    fn text(&mut self, text: &[u8], _cx: &mut ScanCx<'_>) {
        if let Some((_, value)) = &mut self.current {
            let room = MAX_VALUE.saturating_sub(value.len()).min(text.len());
            value.extend_from_slice(text.get(..room).unwrap_or_default());
        }
    }
}

impl CustomProps {
    /// Labels go to the sink as metadata labels; other property values as metadata text (a
    /// "Classification: Vertrouwelijk" property is a marking too).
    pub(super) fn finish(&self, cx: &mut ScanCx<'_>) {
        let mut labels: Vec<(String, bool, Option<String>)> = Vec::new();
        for (name, value) in &self.props {
            let Some((guid, attr)) = msip_parts(name) else {
                cx.sink.text(value, TextOrigin::Metadata);
                cx.sink.end_text();
                continue;
            };
            let idx = match labels.iter().position(|l| l.0 == guid) {
                Some(i) => i,
                None => {
                    labels.push((guid, false, None));
                    labels.len() - 1
                }
            };
            let Some(label) = labels.get_mut(idx) else {
                continue;
            };
            match attr {
                b"Enabled" => label.1 = value.trim_ascii().eq_ignore_ascii_case(b"true"),
                b"Name" => label.2 = Some(String::from_utf8_lossy(value).trim().to_lowercase()),
                _ => {}
            }
        }
        for (guid, enabled, name) in labels {
            if !enabled {
                continue;
            }
            if let Some(name) = &name {
                cx.sink.text(name.as_bytes(), TextOrigin::Metadata);
                cx.sink.end_text();
            }
            let table = &cx.config.labels;
            let level = name
                .as_ref()
                .and_then(|n| table.names.get(n))
                .or_else(|| table.guids.get(&guid))
                .copied();
            if let Some(level) = level {
                push_label(level, cx);
            }
        }
    }
}

/// `MSIP_Label_<guid>_<Attr>` → (lowercase guid, attr).
fn msip_parts(name: &[u8]) -> Option<(String, &[u8])> {
    let rest = name.strip_prefix(b"MSIP_Label_")?;
    let guid = rest.get(..36)?;
    let attr = rest.get(36..)?.strip_prefix(b"_")?;
    Some((normalise_guid(guid)?, attr))
}

/// Lowercase, without braces; `None` unless it looks like a GUID.
fn normalise_guid(raw: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(raw).ok()?.trim();
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    let ok = s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    ok.then(|| s.to_ascii_lowercase())
}

fn push_label(level: Level, cx: &mut ScanCx<'_>) {
    cx.sink.label(level, LabelSource::Metadata);
}

/// `docMetadata/LabelInfo.xml`: `<clbl:label id="{GUID}" enabled="1" removed="0" …/>`. It has
/// no name, so only the GUID table can map it.
#[derive(Debug, Default)]
pub(super) struct LabelInfo {
    guids: Vec<String>,
}

impl XmlHandler for LabelInfo {
    fn start(&mut self, name: &[u8], tag: &Tag<'_>, _cx: &mut ScanCx<'_>) {
        if name != b"label" || self.guids.len() >= MAX_PROPS {
            return;
        }
        let yes = |v: Option<std::borrow::Cow<'_, [u8]>>| {
            v.is_some_and(|v| v.as_ref() == b"1" || v.eq_ignore_ascii_case(b"true"))
        };
        if !yes(tag.attr(b"enabled")) || yes(tag.attr(b"removed")) {
            return;
        }
        if let Some(guid) = tag.attr(b"id").and_then(|id| normalise_guid(&id)) {
            self.guids.push(guid);
        }
    }

    fn end(&mut self, _name: &[u8], _cx: &mut ScanCx<'_>) {}
    fn text(&mut self, _text: &[u8], _cx: &mut ScanCx<'_>) {}
}

impl LabelInfo {
    pub(super) fn finish(&self, cx: &mut ScanCx<'_>) {
        for guid in &self.guids {
            if let Some(level) = cx.config.labels.guids.get(guid).copied() {
                push_label(level, cx);
            }
        }
    }
}
