use super::{Tag, XmlHandler, XmlTokenizer};
use crate::inspect::engine::EngineConfig;
use crate::inspect::file::ScanCx;
use crate::inspect::sink::NullSink;

/// Records events as a string: `<name attr>`, `</name>`, text.
#[derive(Default)]
struct Events(String);

impl XmlHandler for Events {
    fn start(&mut self, name: &[u8], tag: &Tag<'_>, _cx: &mut ScanCx<'_>) {
        let attr = tag
            .attr(b"val")
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        self.0.push_str(&format!(
            "<{}{}>",
            String::from_utf8_lossy(name),
            attr.map(|a| format!(" {a}")).unwrap_or_default()
        ));
    }
    fn end(&mut self, name: &[u8], _cx: &mut ScanCx<'_>) {
        self.0
            .push_str(&format!("</{}>", String::from_utf8_lossy(name)));
    }
    fn text(&mut self, text: &[u8], _cx: &mut ScanCx<'_>) {
        self.0.push_str(&String::from_utf8_lossy(text));
    }
}

fn run(xml: &[u8], chunk: usize) -> (String, bool) {
    let config = EngineConfig::default();
    let mut sink = NullSink;
    let mut budget = 0;
    let mut cx = ScanCx {
        config: &config,
        sink: &mut sink,
        expand_budget: &mut budget,
    };
    let mut tok = XmlTokenizer::new();
    let mut ev = Events::default();
    for piece in xml.chunks(chunk) {
        tok.feed(piece, &mut ev, &mut cx);
    }
    (ev.0, tok.not_xml())
}

#[test]
fn events_do_not_depend_on_chunking() {
    let xml = "\u{feff}<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><w:doc><!-- a > b --><w:p w:val=\"a&amp;b &#x42;\"><w:t>Jan &amp; Piet &lt;3 &#233;&#x20AC; &bogus; & x</w:t><w:br/><![CDATA[raw <b>]] ]]></w:p></w:doc>".as_bytes();
    let (whole, not_xml) = run(xml, xml.len());
    assert!(!not_xml);
    assert_eq!(
        whole,
        "<doc><p a&b B><t>Jan & Piet <3 é€ &bogus; & x</t><br></br>raw <b>]] </p></doc>"
    );
    for chunk in [1, 2, 3, 7, 13] {
        assert_eq!(run(xml, chunk).0, whole, "chunk {chunk}");
    }
}

#[test]
fn ciphertext_is_not_xml() {
    let (events, not_xml) = run(b"\x8f\x12<t>x</t>", 1);
    assert!(not_xml);
    assert!(events.is_empty());
}

#[test]
fn long_tags_are_capped() {
    let mut xml = b"<a val=\"".to_vec();
    xml.extend(std::iter::repeat_n(b'x', super::MAX_TAG * 2));
    xml.extend_from_slice(b"\">text</a>");
    let (events, _) = run(&xml, 4096);
    assert!(
        events.ends_with("text</a>"),
        "{}",
        &events[events.len() - 20..]
    );
}
