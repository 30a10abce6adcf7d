use proptest::prelude::*;

use super::*;

/// A frame as a client writes it: masked with `mask`.
fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[test]
fn heads_of_every_length_form_parse() {
    let mask = [1, 2, 3, 4];
    for (len, head_len) in [(0, 6), (125, 6), (126, 8), (65_535, 8), (65_536, 14)] {
        let frame = client_frame(true, BINARY, &vec![0u8; len], mask);
        let head = Head::parse(&frame).unwrap().unwrap();
        assert_eq!(
            head,
            Head {
                fin: true,
                rsv: 0,
                opcode: BINARY,
                masked: true,
                mask,
                payload: len as u64,
                len: head_len,
            }
        );
        // Any shorter prefix of the head is not yet a head.
        for cut in 0..head_len {
            assert_eq!(Head::parse(&frame[..cut]), Ok(None), "len {len}, cut {cut}");
        }
    }
}

#[test]
fn a_length_over_2_pow_63_is_refused() {
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&u64::MAX.to_be_bytes());
    frame.extend_from_slice(&[0; 4]);
    assert!(Head::parse(&frame).is_err());
}

#[test]
fn client_frames_that_cannot_be_read_as_sent_are_refused() {
    let head = |b0: u8, b1: u8| Head::parse(&[b0, b1, 0, 0, 0, 0]).unwrap().unwrap();
    // A masked, final text frame with nothing open is fine; so is a ping inside a message.
    assert_eq!(head(0x81, 0x80).check_client(false), Ok(()));
    assert_eq!(head(0x89, 0x80).check_client(true), Ok(()));
    for (b0, b1, open, why) in [
        (0x81, 0x00, false, "client frame not masked"),
        (0xC1, 0x80, false, "reserved bits set"), // RSV1: compressed
        (
            0x09,
            0x80,
            false,
            "control frame fragmented or over 125 bytes",
        ),
        (0x80, 0x80, false, "continuation without a message"),
        (0x02, 0x80, true, "new message inside a fragmented one"),
        (0x83, 0x80, false, "reserved opcode"),
        (0x8B, 0x80, false, "reserved opcode"),
    ] {
        let parsed = Head::parse(&[b0, b1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            parsed.unwrap().check_client(open),
            Err(why),
            "{b0:#x} {b1:#x}"
        );
    }
    let long_ping = client_frame(true, PING, &[0; 126], [0; 4]);
    assert_eq!(
        Head::parse(&long_ping)
            .unwrap()
            .unwrap()
            .check_client(false),
        Err("control frame fragmented or over 125 bytes")
    );
}

#[test]
fn a_close_frame_fits_the_control_frame_limit_and_masks_for_the_upstream() {
    let long = "x".repeat(300);
    let to_client = close_frame(1008, &long, None);
    assert_eq!(to_client[0], 0x88);
    assert_eq!(to_client[1], 125);
    assert_eq!(&to_client[2..4], &1008u16.to_be_bytes());
    assert_eq!(to_client.len(), 2 + 125);

    let mask = [9, 8, 7, 6];
    let to_upstream = close_frame(1008, "bye", Some(mask));
    let head = Head::parse(&to_upstream).unwrap().unwrap();
    assert!(head.masked && head.fin && head.opcode == CLOSE && head.payload == 5);
    let payload = unmask(&to_upstream[head.len..], mask, 0);
    assert_eq!(&payload[..], b"\x03\xf0bye");
}

#[test]
fn the_close_reason_stays_within_123_bytes() {
    let id = "HXMQ13FN72V8TEEJ";
    assert_eq!(
        close_reason("ksp-privacy-4-bsn", id),
        "blocked by sluis: ksp-privacy-4-bsn, incident HXMQ13FN72V8TEEJ"
    );
    let long = close_reason(&"r".repeat(200), id);
    assert_eq!(long, "blocked by sluis, incident HXMQ13FN72V8TEEJ");
}

proptest! {
    /// Unmasking a payload in pieces, each from its own offset, gives the payload.
    #[test]
    fn unmasking_in_pieces_is_unmasking_whole(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        mask in any::<[u8; 4]>(),
        cuts in proptest::collection::vec(0usize..300, 0..6),
    ) {
        let masked = &client_frame(true, TEXT, &payload, mask)[..];
        let head = Head::parse(masked).unwrap().unwrap();
        let body = &masked[head.len..];
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
        cuts.push(0);
        cuts.push(body.len());
        cuts.sort_unstable();
        let mut out = Vec::new();
        for w in cuts.windows(2) {
            out.extend_from_slice(&unmask(&body[w[0]..w[1]], mask, w[0] as u64));
        }
        prop_assert_eq!(out, payload);
    }

    /// Frame boundaries are found however the stream is cut into reads.
    #[test]
    fn boundaries_are_followed_across_reads(
        sizes in proptest::collection::vec(0usize..70_000, 1..5),
        cut in 1usize..5_000,
    ) {
        let frames: Vec<Vec<u8>> = sizes
            .iter()
            .map(|&n| {
                let mut f = client_frame(true, BINARY, &vec![7u8; n], [0; 4]);
                // Server frames are not masked: clear the bit and drop the key.
                let at = Head::parse(&f).unwrap().unwrap().len - 4;
                f[1] &= 0x7F;
                f.drain(at..at + 4);
                f
            })
            .collect();
        let ends: Vec<usize> = frames
            .iter()
            .scan(0, |end, f| {
                *end += f.len();
                Some(*end)
            })
            .collect();
        let stream = frames.concat();
        let mut tracker = Boundaries::default();
        let mut at = 0;
        while at < stream.len() {
            let next = (at + cut).min(stream.len());
            tracker.advance(&stream[at..next]);
            at = next;
            prop_assert_eq!(tracker.at_boundary(), ends.contains(&at), "after {} bytes", at);
        }
    }
}
