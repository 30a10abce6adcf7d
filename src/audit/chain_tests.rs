use super::*;

/// `n` chained lines of a minimal audit shape, as the writer would make them.
pub(crate) fn chained_lines(n: usize) -> Vec<Vec<u8>> {
    let mut chain = ChainState::new("audit.log".into(), "2026-01-01T00:00:00Z".into(), None);
    (0..n)
        .map(|i| {
            let v = serde_json::json!({"n": i, "sluis": {"chain": chain.next_link()}});
            let line = serde_json::to_vec(&v).unwrap();
            chain.commit(&line);
            line
        })
        .collect()
}

fn verify_lines(lines: &[Vec<u8>]) -> StreamReport {
    let text: Vec<u8> = lines
        .iter()
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect();
    verify_stream(&text[..]).unwrap()
}

fn broken_at(lines: &[Vec<u8>]) -> (u64, BreakKind) {
    let b = verify_lines(lines).first_break.expect("a break");
    (b.line, b.kind)
}

#[test]
fn intact_chain_verifies() {
    let lines = chained_lines(6);
    let r = verify_lines(&lines);
    assert!(r.first_break.is_none(), "{:?}", r.first_break);
    assert_eq!(r.lines, 6);
    assert_eq!(r.last_hash.as_deref(), Some(line_hash(&lines[5]).as_str()));
    assert_eq!(r.start.unwrap().stream, "audit.log");
}

#[test]
fn an_edited_line_is_named() {
    let mut lines = chained_lines(6);
    lines[2] = String::from_utf8(lines[2].clone())
        .unwrap()
        .replace("\"n\":2", "\"n\":9")
        .into_bytes();
    assert_eq!(broken_at(&lines), (3, BreakKind::Edited));
    let mut lines = chained_lines(6);
    lines[0] = String::from_utf8(lines[0].clone())
        .unwrap()
        .replace("\"n\":0", "\"n\":7")
        .into_bytes();
    assert_eq!(broken_at(&lines), (1, BreakKind::Edited));
}

#[test]
fn a_deleted_line_is_named() {
    let mut lines = chained_lines(6);
    lines.remove(2);
    assert_eq!(broken_at(&lines), (3, BreakKind::Deleted));
    let mut lines = chained_lines(6);
    lines.remove(0);
    assert_eq!(broken_at(&lines), (1, BreakKind::Deleted));
}

#[test]
fn swapped_lines_are_named() {
    let mut lines = chained_lines(6);
    lines.swap(3, 4);
    assert_eq!(broken_at(&lines), (4, BreakKind::Reordered));
    let mut lines = chained_lines(6);
    lines.swap(0, 1);
    assert_eq!(broken_at(&lines), (1, BreakKind::Reordered));
}

#[test]
fn a_forged_genesis_or_cut_line_is_caught() {
    let mut lines = chained_lines(3);
    lines[0] = String::from_utf8(lines[0].clone())
        .unwrap()
        .replace("2026-01-01", "2025-01-01")
        .into_bytes();
    assert_eq!(broken_at(&lines), (1, BreakKind::Edited));
    let mut lines = chained_lines(3);
    let cut = lines[2].len() / 2;
    lines[2].truncate(cut);
    assert_eq!(broken_at(&lines), (3, BreakKind::Malformed));
    let mut lines = chained_lines(3);
    lines.insert(1, b"hello".to_vec());
    assert_eq!(broken_at(&lines), (2, BreakKind::Malformed));
}

#[test]
fn overlong_lines_are_bounded() {
    let mut text = vec![b'x'; MAX_LINE + 10];
    text.extend_from_slice(b"\nnext\n");
    let mut r = &text[..];
    let mut buf = Vec::new();
    assert!(read_line(&mut r, &mut buf).unwrap());
    assert_eq!(buf.len(), MAX_LINE + 1);
    assert!(read_line(&mut r, &mut buf).unwrap());
    assert_eq!(buf, b"next");
    assert!(!read_line(&mut r, &mut buf).unwrap());
}
