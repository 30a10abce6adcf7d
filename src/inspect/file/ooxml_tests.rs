use crate::inspect::engine::EngineConfig;
use crate::inspect::file::testutil::{damage, fixture, scan_all};
use crate::inspect::report::{EncryptionKind, FileType, LabelSource, Level, Verdict};
use crate::inspect::sink::TextOrigin::{Body, FileName, HeaderFooter, Metadata};

const CONFIDENTIAL_GUID: &str = "3a1c5b6e-2f4d-4c8a-9b7e-1d2c3b4a5f60";
const SECRET_GUID: &str = "9f8e7d6c-5b4a-4321-8fed-cba987654321";

fn labelled_config() -> EngineConfig {
    let mut c = EngineConfig::default();
    c.labels
        .names
        .insert("vertrouwelijk".into(), Level::Confidential);
    c.labels.guids.insert(SECRET_GUID.into(), Level::Secret);
    c
}

#[test]
fn docx_body_footer_header_and_metadata() {
    let (facts, sink) = scan_all(&fixture("docx-footer-bsn.docx"), &EngineConfig::default());
    assert_eq!(facts.file_type, FileType::Docx);
    assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted);
    // Runs of one paragraph are joined; the BSN arrives as body text.
    assert!(
        sink.has(Body, "Klant Jansen heeft BSN 111222333 op het formulier.\n"),
        "{sink:?}"
    );
    assert!(sink.has(Body, "Tweede alinea met tab."));
    assert!(sink.has(HeaderFooter, "Vertrouwelijk"));
    assert!(sink.has(HeaderFooter, "Afdeling Finance"));
    assert!(!sink.has(Body, "Vertrouwelijk"));
    assert!(sink.has(Metadata, "Klantdossier"));
    assert!(sink.has(Metadata, "dossier, klant"));
    assert!(sink.has(FileName, "word/document.xml"));
    assert!(sink.labels.is_empty());
}

#[test]
fn docx_watermark_attribute_is_header_footer_text() {
    let (_, sink) = scan_all(&fixture("docx-watermark.docx"), &EngineConfig::default());
    assert!(sink.has(HeaderFooter, "GEHEIM & intern"), "{sink:?}");
}

#[test]
fn msip_custom_properties_map_by_name_then_guid() {
    let bytes = fixture("docx-msip.docx");
    // Entries reordered: custom.xml and document.xml come before [Content_Types].xml.
    let (facts, sink) = scan_all(&bytes, &labelled_config());
    assert_eq!(facts.file_type, FileType::Docx);
    assert_eq!(sink.labels, [(Level::Confidential, LabelSource::Metadata)]);
    assert!(sink.has(Metadata, "vertrouwelijk"));
    // By GUID when the name is not in the table.
    let mut by_guid = EngineConfig::default();
    by_guid
        .labels
        .guids
        .insert(CONFIDENTIAL_GUID.into(), Level::Confidential);
    let (_, sink) = scan_all(&bytes, &by_guid);
    assert_eq!(sink.labels, [(Level::Confidential, LabelSource::Metadata)]);
    // Unknown label: no level.
    let (_, sink) = scan_all(&bytes, &EngineConfig::default());
    assert!(sink.labels.is_empty());
}

#[test]
fn labelinfo_part_maps_by_guid() {
    let (facts, sink) = scan_all(&fixture("docx-labelinfo.docx"), &labelled_config());
    assert_eq!(facts.file_type, FileType::Docx);
    assert_eq!(sink.labels, [(Level::Secret, LabelSource::Metadata)]);
}

#[test]
fn xlsx_cells_numbers_and_page_header() {
    let (facts, sink) = scan_all(&fixture("xlsx-numbers.xlsx"), &EngineConfig::default());
    assert_eq!(facts.file_type, FileType::Xlsx);
    let body = sink.text(Body);
    assert!(body.contains("Jansen 012345672 1500.25"), "{body}");
    assert!(body.contains("111222333"));
    assert!(sink.has(HeaderFooter, "Vertrouwelijk"));
    assert!(sink.has(HeaderFooter, "Pagina "));
    assert!(!sink.has(HeaderFooter, "Arial"));
    // LibreOffice writes shared strings.
    let (facts, sink) = scan_all(&fixture("xlsx-shared.xlsx"), &EngineConfig::default());
    assert_eq!(facts.file_type, FileType::Xlsx);
    assert!(sink.has(Body, "de Vries"), "{sink:?}");
    assert!(sink.has(Body, "012345672"));
}

#[test]
fn pptx_slides_notes_and_markings() {
    let (facts, sink) = scan_all(&fixture("pptx-text.pptx"), &EngineConfig::default());
    assert_eq!(facts.file_type, FileType::Pptx);
    assert!(sink.has(Body, "Kwartaalcijfers"));
    assert!(sink.has(Body, "BSN 111222333 in de bijlage"));
    assert!(sink.has(Body, "Spreker: niet delen"));
    // The label's visual marking shape.
    assert!(sink.has(HeaderFooter, "Geheim"), "{sink:?}");
}

#[test]
fn odt_clear_text_styles_and_meta() {
    let (facts, sink) = scan_all(&fixture("odt-clear.odt"), &EngineConfig::default());
    assert_eq!(facts.file_type, FileType::Odt);
    assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted);
    assert!(sink.has(Body, "BSN 111222333"), "{sink:?}");
    assert!(sink.has(HeaderFooter, "Vertrouwelijk"));
    assert!(sink.has(Metadata, "Klantdossier"));
    let (facts, sink) = scan_all(&fixture("ods-clear.ods"), &EngineConfig::default());
    assert_eq!(facts.file_type, FileType::Ods);
    assert!(sink.has(Body, "111222333"));
}

#[test]
fn odf_with_a_password_is_encrypted() {
    for (name, t) in [
        ("odt-encrypted.odt", FileType::Odt),
        ("ods-encrypted.ods", FileType::Ods),
    ] {
        let (facts, sink) = scan_all(&fixture(name), &EngineConfig::default());
        assert_eq!(facts.file_type, t);
        assert_eq!(facts.encryption.verdict, Verdict::Encrypted, "{name}");
        assert_eq!(facts.encryption.kind, Some(EncryptionKind::OdfEncrypted));
        assert!(!sink.has(Body, "111222333"));
        assert!(sink.has(FileName, "content.xml"));
    }
}

#[test]
fn damaged_office_files_do_not_panic() {
    for name in ["docx-msip.docx", "xlsx-numbers.xlsx", "odt-encrypted.odt"] {
        for facts in damage(&fixture(name), &labelled_config()) {
            if name.starts_with("odt") {
                continue;
            }
            assert_ne!(facts.encryption.verdict, Verdict::Encrypted, "{name}");
        }
    }
}
