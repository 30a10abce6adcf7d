//! Stream filters the text extraction needs: FlateDecode, and ASCII85Decode in front of it (as
//! ReportLab writes). Output is pushed through fixed buffers and charged to the body's
//! decompression budget; a stream that expands beyond the ratio limit is cut.

use flate2::{Decompress, FlushDecompress, Status};

use super::obj::Obj;

/// Decompressed bytes produced per inflate call.
const OUT_BUF: usize = 16 << 10;
/// Below this many output bytes a stream is never treated as a bomb, whatever its ratio.
const RATIO_FLOOR: u64 = 1 << 20;

/// The filter chain of a stream, when the scanner can decode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chain {
    pub(super) a85: bool,
    pub(super) flate: bool,
}

/// Why decoding stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The body's decompression budget is spent.
    Budget,
    /// Output grew past `max_ratio` times the input.
    Ratio,
    /// The data is not valid for its filter (or is encrypted).
    Corrupt,
}

pub(super) struct Decoder {
    chain: Chain,
    a85: A85,
    inflate: Decompress,
    out: Box<[u8; OUT_BUF]>,
    a85_out: Vec<u8>,
    meter: Meter,
}

/// What one stream has cost so far.
#[derive(Debug, Default)]
struct Meter {
    consumed: u64,
    produced: u64,
    done: bool,
}

#[derive(Debug, Default)]
struct A85 {
    acc: u32,
    count: u8,
    ended: bool,
}

// === impl Chain ===

impl Chain {
    /// The chain of a stream dictionary; `None` for filters (or predictors) not handled.
    pub(super) fn of(dict: &Obj) -> Option<Chain> {
        if dict
            .get(b"DecodeParms")
            .and_then(|p| p.get(b"Predictor"))
            .and_then(Obj::int)
            .is_some_and(|p| p > 1)
        {
            return None;
        }
        let filters: &[Obj] = match dict.get(b"Filter") {
            None => &[],
            Some(Obj::Array(items)) => items,
            Some(single) => std::slice::from_ref(single),
        };
        let mut chain = Chain {
            a85: false,
            flate: false,
        };
        for (i, filter) in filters.iter().enumerate() {
            match filter.name()? {
                b"ASCII85Decode" | b"A85" if i == 0 => chain.a85 = true,
                b"FlateDecode" | b"Fl" if !chain.flate => chain.flate = true,
                _ => return None,
            }
        }
        Some(chain)
    }
}

// === impl Decoder ===

impl Decoder {
    pub(super) fn new() -> Self {
        Self {
            chain: Chain {
                a85: false,
                flate: false,
            },
            a85: A85::default(),
            inflate: Decompress::new(true),
            out: Box::new([0; OUT_BUF]),
            a85_out: Vec::new(),
            meter: Meter::default(),
        }
    }

    /// Starts a new stream.
    pub(super) fn start(&mut self, chain: Chain) {
        self.chain = chain;
        self.a85 = A85::default();
        self.inflate.reset(true);
        self.meter = Meter::default();
    }

    /// Decodes the next piece of stream data, handing decoded bytes to `emit`.
    pub(super) fn feed(
        &mut self,
        data: &[u8],
        budget: &mut u64,
        max_ratio: u32,
        emit: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Stop> {
        if self.meter.done {
            return Ok(());
        }
        self.meter.consumed += data.len() as u64;
        if !self.chain.a85 {
            return self.after_a85(data, budget, max_ratio, emit);
        }
        let mut a85_out = std::mem::take(&mut self.a85_out);
        for piece in data.chunks(OUT_BUF / 2) {
            a85_out.clear();
            self.a85.decode(piece, &mut a85_out);
            let result = self.after_a85(&a85_out, budget, max_ratio, emit);
            if result.is_err() {
                self.a85_out = a85_out;
                return result;
            }
        }
        self.a85_out = a85_out;
        Ok(())
    }

    fn after_a85(
        &mut self,
        data: &[u8],
        budget: &mut u64,
        max_ratio: u32,
        emit: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Stop> {
        if !self.chain.flate {
            return self.meter.charge(data, budget, max_ratio, emit);
        }
        let mut input = data;
        loop {
            let (in_before, out_before) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(input, &mut self.out[..], FlushDecompress::None)
                .map_err(|_| Stop::Corrupt)?;
            let used = usize::try_from(self.inflate.total_in() - in_before).unwrap_or(usize::MAX);
            let made = usize::try_from(self.inflate.total_out() - out_before).unwrap_or(0);
            input = input.get(used..).unwrap_or_default();
            let decoded = self.out.get(..made).unwrap_or_default();
            self.meter.charge(decoded, budget, max_ratio, emit)?;
            if status == Status::StreamEnd {
                self.meter.done = true;
                return Ok(());
            }
            if (input.is_empty() && made < OUT_BUF) || (used == 0 && made == 0) {
                return Ok(());
            }
        }
    }
}

// === impl Meter ===

impl Meter {
    /// Counts decoded bytes against the budget and the ratio, then hands them on.
    fn charge(
        &mut self,
        bytes: &[u8],
        budget: &mut u64,
        max_ratio: u32,
        emit: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Stop> {
        let len = bytes.len() as u64;
        if len > *budget {
            let allowed = usize::try_from(*budget).unwrap_or(0);
            emit(bytes.get(..allowed).unwrap_or_default());
            *budget = 0;
            self.done = true;
            return Err(Stop::Budget);
        }
        *budget -= len;
        self.produced += len;
        emit(bytes);
        if self.produced > RATIO_FLOOR
            && self.produced > self.consumed.saturating_mul(u64::from(max_ratio))
        {
            self.done = true;
            return Err(Stop::Ratio);
        }
        Ok(())
    }
}

// === impl A85 ===

impl A85 {
    fn decode(&mut self, data: &[u8], out: &mut Vec<u8>) {
        for &c in data {
            if self.ended {
                return;
            }
            match c {
                b'!'..=b'u' => {
                    self.acc = self.acc.wrapping_mul(85).wrapping_add(u32::from(c - b'!'));
                    self.count += 1;
                    if self.count == 5 {
                        out.extend_from_slice(&self.acc.to_be_bytes());
                        self.acc = 0;
                        self.count = 0;
                    }
                }
                b'z' if self.count == 0 => out.extend_from_slice(&[0; 4]),
                b'~' => {
                    self.ended = true;
                    if self.count > 1 {
                        // A final partial group is padded with 'u' and yields count-1 bytes.
                        let mut acc = self.acc;
                        for _ in self.count..5 {
                            acc = acc.wrapping_mul(85).wrapping_add(84);
                        }
                        let keep = usize::from(self.count - 1);
                        out.extend_from_slice(acc.to_be_bytes().get(..keep).unwrap_or_default());
                    }
                }
                _ => {}
            }
        }
    }
}
