//! What the detectors keep of a match: a count, a few masked examples and keyed fingerprints.
//!
//! This is the only place a matched value is handled after validation, and it never stores one:
//! evidence keeps at most the last four characters (numbers) or the fixed prefix (secrets), and
//! fingerprints are HMACs under a key the engine was given.

pub use crate::inspect::fingerprint::Fingerprinter;
use crate::inspect::report::{Detection, DetectorKind, LabelFinding, LabelSource, Level};

/// Masked examples kept per detector.
pub const MAX_EVIDENCE: usize = 3;
/// Distinct fingerprints kept per detector.
pub const MAX_FINGERPRINTS: usize = 32;

const KINDS: [DetectorKind; 6] = [
    DetectorKind::Bsn,
    DetectorKind::Iban,
    DetectorKind::PaymentCard,
    DetectorKind::PrivateKey,
    DetectorKind::CloudKey,
    DetectorKind::ApiToken,
];

/// Accumulated findings of one text stream owner (a file, or the body's text).
#[derive(Debug, Default, Clone)]
pub struct Findings {
    kinds: [KindFindings; 6],
    label: Option<LabelFinding>,
}

#[derive(Debug, Default, Clone)]
struct KindFindings {
    count: u32,
    evidence: Vec<String>,
    fingerprints: Vec<[u8; 32]>,
}

/// How a value is shown in evidence.
#[derive(Debug, Clone, Copy)]
pub enum Mask<'a> {
    /// Keep the last four characters of the normalised value: `*****6782`.
    LastFour,
    /// Keep only a fixed, non-secret prefix: `AKIA************`.
    Prefix(&'a str),
}

// === impl Findings ===

impl Findings {
    /// Records one validated occurrence. `value` is the normalised value (digits only, or the
    /// uppercase IBAN, or the whole secret); it is masked or MAC'd here and then forgotten.
    pub fn record(
        &mut self,
        kind: DetectorKind,
        value: &[u8],
        mask: Mask<'_>,
        fp: Option<&Fingerprinter>,
    ) {
        let Some(slot) = self.kinds.get_mut(kind_index(kind)) else {
            return;
        };
        slot.count = slot.count.saturating_add(1);
        if slot.evidence.len() < MAX_EVIDENCE {
            let shown = masked(value, mask);
            if !slot.evidence.contains(&shown) {
                slot.evidence.push(shown);
            }
        }
        if let Some(fp) = fp
            && slot.fingerprints.len() < MAX_FINGERPRINTS
        {
            let digest = fp.digest(kind.as_str(), &String::from_utf8_lossy(value));
            if !slot.fingerprints.contains(&digest) {
                slot.fingerprints.push(digest);
            }
        }
    }

    /// Keeps the highest label; at equal level, the stronger source.
    pub fn label(&mut self, level: Level, source: LabelSource) {
        let new = LabelFinding { level, source };
        self.label = Some(match self.label.take() {
            Some(old) if outranks(&old, &new) => old,
            _ => new,
        });
    }

    pub fn count(&self, kind: DetectorKind) -> u32 {
        self.kinds.get(kind_index(kind)).map_or(0, |k| k.count)
    }

    pub fn current_label(&self) -> Option<&LabelFinding> {
        self.label.as_ref()
    }

    /// The report's view: detectors with at least one occurrence, in `DetectorKind` order.
    pub fn into_parts(self) -> (Option<LabelFinding>, Vec<Detection>) {
        let detections = KINDS
            .iter()
            .zip(self.kinds)
            .filter(|(_, k)| k.count > 0)
            .map(|(kind, k)| Detection {
                kind: *kind,
                count: k.count,
                evidence: k.evidence,
                fingerprints: k.fingerprints.iter().map(hex::encode).collect(),
            })
            .collect();
        (self.label, detections)
    }
}

/// Whether `old` should be kept over `new`.
pub(crate) fn outranks(old: &LabelFinding, new: &LabelFinding) -> bool {
    (old.level, source_rank(old.source)) >= (new.level, source_rank(new.source))
}

/// Evidence strength of a label source: metadata is set deliberately, a file name least so.
fn source_rank(source: LabelSource) -> u8 {
    match source {
        LabelSource::Metadata => 3,
        LabelSource::HeaderFooter => 2,
        LabelSource::Body => 1,
        LabelSource::FileName => 0,
    }
}

fn kind_index(kind: DetectorKind) -> usize {
    match kind {
        DetectorKind::Bsn => 0,
        DetectorKind::Iban => 1,
        DetectorKind::PaymentCard => 2,
        DetectorKind::PrivateKey => 3,
        DetectorKind::CloudKey => 4,
        DetectorKind::ApiToken => 5,
    }
}

/// Masks a value. The number of stars is fixed so the mask does not reveal the length.
pub fn masked(value: &[u8], mask: Mask<'_>) -> String {
    match mask {
        Mask::LastFour => {
            let tail = value.get(value.len().saturating_sub(4)..).unwrap_or(&[]);
            let mut out = String::from("*****");
            out.extend(tail.iter().map(|&b| char::from(b)));
            out
        }
        Mask::Prefix(prefix) => format!("{prefix}************"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_at_most_last_four() {
        assert_eq!(masked(b"111222333", Mask::LastFour), "*****2333");
        assert_eq!(masked(b"12", Mask::LastFour), "*****12");
        assert_eq!(
            masked(b"AKIAIOSFODNN7EXAMPLE", Mask::Prefix("AKIA")),
            "AKIA************"
        );
    }

    #[test]
    fn counts_every_occurrence_but_caps_evidence() {
        let mut f = Findings::default();
        for v in [
            &b"123456782"[..],
            b"111222333",
            b"123456782",
            b"999999990",
            b"000000124",
        ] {
            f.record(DetectorKind::Bsn, v, Mask::LastFour, None);
        }
        let (_, d) = f.into_parts();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].count, 5);
        assert_eq!(d[0].evidence, ["*****6782", "*****2333", "*****9990"]);
        assert!(d[0].fingerprints.is_empty());
    }

    #[test]
    fn fingerprints_are_keyed_distinct_and_capped() {
        let fp = Fingerprinter::new(b"k1").unwrap();
        let other = Fingerprinter::new(b"k2").unwrap();
        let mut f = Findings::default();
        f.record(
            DetectorKind::Iban,
            b"NL91ABNA0417164300",
            Mask::LastFour,
            Some(&fp),
        );
        f.record(
            DetectorKind::Iban,
            b"NL91ABNA0417164300",
            Mask::LastFour,
            Some(&fp),
        );
        for i in 0..40u32 {
            f.record(
                DetectorKind::Bsn,
                format!("{i:09}").as_bytes(),
                Mask::LastFour,
                Some(&fp),
            );
        }
        let (_, d) = f.into_parts();
        assert_eq!(d[0].kind, DetectorKind::Bsn);
        assert_eq!(d[0].fingerprints.len(), MAX_FINGERPRINTS);
        let iban = &d[1];
        assert_eq!(iban.count, 2);
        assert_eq!(iban.fingerprints.len(), 1);
        assert_eq!(iban.fingerprints[0].len(), 64);
        assert_ne!(
            iban.fingerprints[0],
            hex::encode(other.digest("iban", "NL91ABNA0417164300"))
        );
        // `sluis audit find` recomputes the same fingerprint from any spelling of the value.
        assert_eq!(
            iban.fingerprints[0],
            crate::inspect::fingerprint::fingerprint("iban", "nl91 abna 0417 1643 00", b"k1")
        );
        assert!(!iban.fingerprints[0].contains("4300"));
    }

    #[test]
    fn label_keeps_highest_then_strongest_source() {
        let mut f = Findings::default();
        f.label(Level::Internal, LabelSource::Metadata);
        f.label(Level::Confidential, LabelSource::FileName);
        f.label(Level::Confidential, LabelSource::Body);
        f.label(Level::Public, LabelSource::Metadata);
        assert_eq!(
            f.current_label(),
            Some(&LabelFinding {
                level: Level::Confidential,
                source: LabelSource::Body
            })
        );
    }
}
