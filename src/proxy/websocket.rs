//! WebSocket messages a client sends, inspected like request bodies (RFC 6455).
//!
//! After the switch a connection carries frames, not HTTP, and a message to an external host is
//! as much an upload as a POST body: a chat line with a BSN, a file sent in binary frames. So
//! where the policy would inspect a body sent to the upgrade's URL, the client's frames are
//! read: each data message is fed to an inspection session and judged when its last frame is
//! in. In enforce mode the message is held (its frames as received, in a spool) until then; a
//! blocked message closes the connection with status 1008 and the incident id, and not one of
//! its bytes reaches the upstream. In monitor mode frames pass as they come and the verdict is
//! logged. Control frames (ping, pong, close) carry up to 125 bytes each: each is inspected on
//! its own before it passes.
//!
//! The upstream's frames go to the client unread; only their boundaries are followed, so that a
//! close frame can be put between two of them.
//!
//! Compression (permessage-deflate) would hide the message bytes, so the client's extension
//! offer is taken out of the handshake and the frames carry messages as written. A client frame
//! that cannot be read as RFC 6455 defines it (reserved bits or opcodes, no mask, a control
//! frame over 125 bytes) is an inspection that failed: the policy's `on_error` decides, for an
//! external host a block.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, header};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::audit::EventAction;
use crate::inspect::{BodyMeta, Report, Session};
use crate::policy::{Decision, InspectFailure, Policy, RequestCheck};
use crate::proxy::exchange::Facts;
use crate::proxy::hold::Inspector;
use crate::proxy::observe::{self, ExchangeLog};
use crate::proxy::{Proxy, hop};
use crate::spool::Spool;

/// How a switched connection is relayed.
pub(crate) enum Relay {
    /// Bytes both ways, unread: no rule looks at what is sent to this URL.
    Splice,
    /// The client's messages are inspected one by one.
    Inspect(Box<Messages>),
}

/// What judging a connection's messages needs.
pub(crate) struct Messages {
    policy: Arc<Policy>,
    /// The upgrade request, as if it carried a body.
    facts: Facts,
    client: SocketAddr,
    /// Hold each message until its verdict (a block is possible); else stream and log.
    hold: bool,
}

/// Why the client's side of a relay ended.
enum End {
    /// The client closed its side.
    Eof,
    /// A message was blocked; the close reason for the client.
    Blocked(String),
    /// A message could not be held or inspected, and what was held of it is lost: the
    /// connection cannot go on.
    Failed,
}

/// For a request that asks to switch protocols: how the new connection is to be relayed, or
/// `None` when the switch must be declined (the request then goes on without its `Upgrade`, which
/// a server may always ignore). A WebSocket is inspected where a body sent to its URL would be;
/// any other protocol cannot be read, so there `on_error` decides whether it may pass unread.
pub(crate) fn plan(
    policy: &Arc<Policy>,
    facts: &Facts,
    headers: &HeaderMap,
    client: SocketAddr,
) -> Option<Relay> {
    let mut as_upload = facts.clone();
    as_upload.has_body = true;
    let hold = match policy.check_request(&as_upload.view()) {
        RequestCheck::Decided(d) if !d.is_finding() => return Some(Relay::Splice),
        RequestCheck::Decided(d) => d.blocks(),
        RequestCheck::Inspect { hold } => hold,
    };
    if !is_websocket(headers) {
        let decision = policy.on_error(&as_upload.view(), InspectFailure::Failed);
        return (!decision.blocks()).then_some(Relay::Splice);
    }
    Some(Relay::Inspect(Box::new(Messages {
        policy: Arc::clone(policy),
        facts: as_upload,
        client,
        hold,
    })))
}

/// `Upgrade: websocket` (RFC 6455 4.1; the token is case-insensitive).
fn is_websocket(headers: &HeaderMap) -> bool {
    hop::has_token(headers, header::UPGRADE, "websocket")
}

/// Takes the extension offer out of a WebSocket handshake, so that the upstream cannot agree to
/// compress (RFC 6455 9.1: a server uses only extensions the client offered).
pub(crate) fn refuse_extensions(headers: &mut HeaderMap) {
    headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
}

/// Relays a switched WebSocket connection until both sides have ended or a message is blocked.
/// Returns the bytes moved to the upstream and to the client, and the error kind for the audit
/// when a message ended it (`message_blocked`, `message_failed`).
pub(crate) async fn relay<C, U>(
    proxy: &Arc<Proxy>,
    client: C,
    upstream: U,
    messages: &Messages,
) -> (u64, u64, Option<&'static str>)
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_rd, mut client_wr) = tokio::io::split(client);
    let (mut upstream_rd, mut upstream_wr) = tokio::io::split(upstream);
    // Shared by two futures of one task: atomics only because the task must be `Send`.
    let down_bytes = AtomicU64::new(0);
    let at_boundary = AtomicBool::new(true);
    let mut up = Up::new(proxy, messages);
    let ended = {
        let up_run = up.run(&mut client_rd, &mut upstream_wr);
        let down_run = down(&mut upstream_rd, &mut client_wr, &down_bytes, &at_boundary);
        tokio::pin!(up_run, down_run);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                end = &mut up_run, if !up_done => match end {
                    Ok(End::Eof) => up_done = true,
                    Ok(End::Blocked(reason)) => break Some((1008, reason, "message_blocked")),
                    Ok(End::Failed) => {
                        let reason = "sluis could not inspect a message".to_owned();
                        break Some((1011, reason, "message_failed"));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "websocket ended with an error");
                        break None;
                    }
                },
                res = &mut down_run, if !down_done => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, "websocket ended with an error");
                        break None;
                    }
                    down_done = true;
                }
            }
            if up_done && down_done {
                break None;
            }
        }
    };
    let Some((code, reason, kind)) = ended else {
        return (up.sent, down_bytes.into_inner(), None);
    };
    // Mid-frame, a close frame would corrupt the stream the client reads: then the connection
    // just ends.
    if at_boundary.load(Relaxed) {
        let _ = client_wr.write_all(&close_frame(code, &reason, None)).await;
    }
    let _ = client_wr.shutdown().await;
    // Held messages go upstream whole; a streamed one may have stopped mid-frame.
    if up.m.hold || up.frame.is_none() {
        let _ = upstream_wr
            .write_all(&close_frame(code, "", Some(rand::random())))
            .await;
    }
    let _ = upstream_wr.shutdown().await;
    (up.sent, down_bytes.into_inner(), Some(kind))
}

/// Upstream to client: copied as read, with frame boundaries followed.
async fn down<R, W>(
    from: &mut R,
    to: &mut W,
    moved: &AtomicU64,
    at_boundary: &AtomicBool,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 << 10];
    let mut frames = Boundaries::default();
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        frames.advance(&buf[..n]);
        // Cleared first: a write cut off by a block leaves the client mid-frame.
        at_boundary.store(false, Relaxed);
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
        at_boundary.store(frames.at_boundary(), Relaxed);
        moved.fetch_add(n as u64, Relaxed);
    }
}

/// The client's side: frames read, messages judged.
struct Up<'a> {
    proxy: &'a Arc<Proxy>,
    m: &'a Messages,
    buf: BytesMut,
    /// The data frame whose payload is being read.
    frame: Option<Payload>,
    /// The data message being read.
    message: Option<Message>,
    /// A frame could not be read and the policy let it pass: the rest goes through unread.
    unread: bool,
    /// Bytes written to the upstream.
    sent: u64,
}

struct Payload {
    fin: bool,
    mask: [u8; 4],
    /// Payload bytes still to come.
    left: u64,
    /// Payload bytes read so far: where in the mask the next byte starts.
    at: u64,
}

struct Message {
    inspector: Inspector,
    /// The frames as received, until the verdict; `None` when they stream.
    held: Option<Spool>,
    started: Instant,
    bytes: u64,
}

impl<'a> Up<'a> {
    fn new(proxy: &'a Arc<Proxy>, m: &'a Messages) -> Self {
        Self {
            proxy,
            m,
            buf: BytesMut::with_capacity(64 << 10),
            frame: None,
            message: None,
            unread: false,
            sent: 0,
        }
    }

    async fn run<R, W>(&mut self, from: &mut R, to: &mut W) -> io::Result<End>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if let Some(end) = self.drain(to).await? {
                return Ok(end);
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(64 << 10);
            }
            if from.read_buf(&mut self.buf).await? == 0 {
                // A message cut off by the client's close is never complete: nothing of it
                // was sent if it was held.
                to.shutdown().await?;
                return Ok(End::Eof);
            }
        }
    }

    /// Handles the frames in the buffer, as far as they go.
    async fn drain<W: AsyncWrite + Unpin>(&mut self, to: &mut W) -> io::Result<Option<End>> {
        loop {
            if self.unread {
                let raw = self.buf.split().freeze();
                if !raw.is_empty() {
                    self.write(to, &raw).await?;
                    to.flush().await?;
                }
                return Ok(None);
            }
            if let Some(frame) = &mut self.frame {
                let n = frame.left.min(self.buf.len() as u64) as usize;
                if n > 0 {
                    let raw = self.buf.split_to(n).freeze();
                    let plain = unmask(&raw, frame.mask, frame.at);
                    frame.at += n as u64;
                    frame.left -= n as u64;
                    if let Some(end) = self.payload(raw, plain, to).await? {
                        return Ok(Some(end));
                    }
                }
                let Some(frame) = &self.frame else {
                    continue;
                };
                if frame.left > 0 {
                    return Ok(None);
                }
                let fin = frame.fin;
                self.frame = None;
                if fin && let Some(end) = self.complete(to).await? {
                    return Ok(Some(end));
                }
                continue;
            }
            let head = match Head::parse(&self.buf) {
                Ok(Some(head)) => head,
                Ok(None) => return Ok(None),
                Err(why) => return self.unreadable(why, to).await,
            };
            if let Err(why) = head.check_client(self.message.is_some()) {
                return self.unreadable(why, to).await;
            }
            if head.is_control() {
                // At most 2 + 4 + 125 bytes (checked above): judged whole.
                let total = head.len + head.payload as usize;
                if self.buf.len() < total {
                    return Ok(None);
                }
                let raw = self.buf.split_to(total).freeze();
                let plain = unmask(&raw[head.len..], head.mask, 0);
                if let Some(end) = self.control(&plain).await {
                    return Ok(Some(end));
                }
                self.write(to, &raw).await?;
                to.flush().await?;
                continue;
            }
            let raw_head = self.buf.split_to(head.len).freeze();
            if head.opcode != CONTINUATION {
                self.start(head.opcode == TEXT);
            }
            self.frame = Some(Payload {
                fin: head.fin,
                mask: head.mask,
                left: head.payload,
                at: 0,
            });
            if let Some(end) = self.payload(raw_head, Bytes::new(), to).await? {
                return Ok(Some(end));
            }
        }
    }

    fn start(&mut self, text: bool) {
        let meta = BodyMeta {
            content_type: text.then(|| "text/plain; charset=utf-8".to_owned()),
            content_encoding: None,
            file_name: None,
        };
        let session = self.m.policy.engine().session(meta);
        self.message = Some(Message {
            inspector: Inspector::new(session),
            held: self.m.hold.then(|| Spool::new(self.proxy.spool.clone())),
            started: Instant::now(),
            bytes: 0,
        });
    }

    /// Bytes of the current message: `raw` as received (a frame head or payload), `plain` the
    /// payload unmasked.
    async fn payload<W: AsyncWrite + Unpin>(
        &mut self,
        raw: Bytes,
        plain: Bytes,
        to: &mut W,
    ) -> io::Result<Option<End>> {
        let Some(mut message) = self.message.take() else {
            return Ok(None);
        };
        message.bytes += plain.len() as u64;
        let mut kept = plain.is_empty() || message.inspector.feed(&plain).await.is_ok();
        message.inspector = message.inspector.offload_once_long(message.bytes);
        let streamed = match &mut message.held {
            _ if !kept => None,
            Some(spool) => {
                if let Err(e) = spool.push(raw).await {
                    tracing::warn!(error = %e, "cannot hold a websocket message for inspection");
                    kept = false;
                }
                None
            }
            None => Some(raw),
        };
        if !kept {
            // Part of the message is lost, so whatever the policy says, it cannot go on whole.
            let decision = self
                .m
                .policy
                .on_error(&self.m.facts.view(), InspectFailure::Failed);
            return Ok(Some(
                self.judged(&decision, None, None).unwrap_or(End::Failed),
            ));
        }
        self.message = Some(message);
        if let Some(raw) = streamed {
            self.write(to, &raw).await?;
        }
        Ok(None)
    }

    /// The current message's last frame is in: its verdict, and its frames sent if allowed.
    async fn complete<W: AsyncWrite + Unpin>(&mut self, to: &mut W) -> io::Result<Option<End>> {
        let Some(message) = self.message.take() else {
            return Ok(None);
        };
        let session = message.inspector.into_session().await.ok();
        let (decision, report) = self.verdict(session);
        let took = message.started.elapsed();
        if let Some(end) = self.judged(&decision, report.as_ref(), Some(took)) {
            return Ok(Some(end));
        }
        if let Some(spool) = message.held {
            self.send_held(spool, to).await?;
        }
        to.flush().await?;
        Ok(None)
    }

    /// What the policy makes of a message: its session's report, or a failed inspection
    /// without one.
    fn verdict(&self, session: Option<Box<Session>>) -> (Decision, Option<Report>) {
        let facts = self.m.facts.view();
        match session {
            Some(session) => {
                let report = session.finish();
                (self.m.policy.evaluate_body(&facts, &report), Some(report))
            }
            None => (self.m.policy.on_error(&facts, InspectFailure::Failed), None),
        }
    }

    /// Sends a held message's frames on.
    async fn send_held<W: AsyncWrite + Unpin>(
        &mut self,
        spool: Spool,
        to: &mut W,
    ) -> io::Result<()> {
        let mut reader = spool.into_reader();
        while let Some(chunk) = reader.next_chunk().await? {
            self.write(to, &chunk).await?;
        }
        Ok(())
    }

    /// A control frame's payload, judged on its own as text: 125 bytes are no file.
    async fn control(&mut self, plain: &Bytes) -> Option<End> {
        if plain.is_empty() {
            return None;
        }
        let started = Instant::now();
        let meta = BodyMeta {
            content_type: Some("text/plain".to_owned()),
            ..BodyMeta::default()
        };
        let mut session = self.m.policy.engine().session(meta);
        session.feed(plain);
        let (decision, report) = self.verdict(Some(Box::new(session)));
        self.judged(&decision, report.as_ref(), Some(started.elapsed()))
    }

    /// A client frame that cannot be read: the policy's answer for a failed inspection. If
    /// that lets it pass, the message being held goes on and the rest of the connection goes
    /// through unread.
    async fn unreadable<W: AsyncWrite + Unpin>(
        &mut self,
        why: &'static str,
        to: &mut W,
    ) -> io::Result<Option<End>> {
        tracing::debug!(why, "websocket frame cannot be inspected");
        let decision = self
            .m
            .policy
            .on_error(&self.m.facts.view(), InspectFailure::Failed);
        let message = self.message.take();
        if let Some(end) = self.judged(&decision, None, None) {
            return Ok(Some(end));
        }
        if let Some(spool) = message.and_then(|m| m.held) {
            self.send_held(spool, to).await?;
        }
        self.frame = None;
        self.unread = true;
        Ok(None)
    }

    /// Logs a verdict (the audit log gets findings, or every message when it logs everything)
    /// and says whether it ends the connection.
    fn judged(
        &self,
        decision: &Decision,
        report: Option<&Report>,
        took: Option<std::time::Duration>,
    ) -> Option<End> {
        let proxy = self.proxy;
        let facts = &self.m.facts;
        let rule = decision.rule.as_ref().map(|r| r.id.as_str());
        proxy
            .metrics
            .websocket_message(decision.action.as_str(), decision.mode.as_str(), rule);
        let took = took.unwrap_or_default();
        // A chat sends many messages: most make no event, and then none is built.
        if !observe::audited(proxy, decision.is_finding()) {
            if let Some(report) = report {
                proxy.metrics.inspection(took, report);
            }
            return None;
        }
        let mut log = ExchangeLog::start(EventAction::Message, self.m.client, None);
        log.target(proxy, &facts.target, Some(&facts.path));
        log.policy_version(self.m.policy.version());
        log.decision(decision);
        if let Some(report) = report {
            log.report(proxy, report, took);
        }
        let end = decision.blocks().then(|| {
            let rule = rule.unwrap_or("default");
            tracing::info!(incident = log.id(), rule, host = %facts.target.host, "websocket message blocked");
            close_reason(rule, log.id())
        });
        log.finish(proxy, StatusCode::OK, None);
        end.map(End::Blocked)
    }

    /// Writes bytes that passed, whole: a frame head, payload, or a held message.
    async fn write<W: AsyncWrite + Unpin>(&mut self, to: &mut W, bytes: &[u8]) -> io::Result<()> {
        to.write_all(bytes).await?;
        self.sent += bytes.len() as u64;
        Ok(())
    }
}

/// The close reason a blocked client sees: at most 123 bytes (RFC 6455 5.5.1).
fn close_reason(rule: &str, incident: &str) -> String {
    let mut reason = format!("blocked by sluis: {rule}, incident {incident}");
    if reason.len() > 123 {
        reason = format!("blocked by sluis, incident {incident}");
    }
    reason
}

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// A frame head (RFC 6455 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    fin: bool,
    /// The three reserved bits; non-zero only with an extension.
    rsv: u8,
    opcode: u8,
    masked: bool,
    mask: [u8; 4],
    payload: u64,
    /// Bytes of the head itself (2 to 14).
    len: usize,
}

impl Head {
    /// The head at the start of `buf`; `None` until all of it is there.
    fn parse(buf: &[u8]) -> Result<Option<Self>, &'static str> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let masked = b1 & 0x80 != 0;
        let (payload, mut len) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(n) => (u64::from(u16::from_be_bytes([n[0], n[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(n) => {
                    let n = u64::from_be_bytes(n.try_into().unwrap_or_default());
                    if n >> 63 != 0 {
                        return Err("payload length over 2^63");
                    }
                    (n, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        let mut mask = [0; 4];
        if masked {
            let Some(key) = buf.get(len..len + 4) else {
                return Ok(None);
            };
            mask.copy_from_slice(key);
            len += 4;
        }
        Ok(Some(Self {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode: b0 & 0x0F,
            masked,
            mask,
            payload,
            len,
        }))
    }

    fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }

    /// What a client frame must be for its bytes to be read as sent (RFC 6455 5.1-5.5, with no
    /// extension agreed). `in_message`: a fragmented data message is open.
    fn check_client(&self, in_message: bool) -> Result<(), &'static str> {
        if !self.masked {
            return Err("client frame not masked");
        }
        if self.rsv != 0 {
            return Err("reserved bits set");
        }
        match self.opcode {
            CLOSE | PING | PONG if !self.fin || self.payload > 125 => {
                Err("control frame fragmented or over 125 bytes")
            }
            CLOSE | PING | PONG => Ok(()),
            CONTINUATION if !in_message => Err("continuation without a message"),
            TEXT | BINARY if in_message => Err("new message inside a fragmented one"),
            CONTINUATION | TEXT | BINARY => Ok(()),
            _ => Err("reserved opcode"),
        }
    }
}

/// `data`, the payload bytes from `offset` on, unmasked (RFC 6455 5.3).
fn unmask(data: &[u8], mask: [u8; 4], offset: u64) -> Bytes {
    let mut out = BytesMut::from(data);
    // The key rotated to start where `data` does, so whole words can be XORed.
    let shift = (offset % 4) as usize;
    let key = [
        mask[shift],
        mask[(shift + 1) % 4],
        mask[(shift + 2) % 4],
        mask[(shift + 3) % 4],
    ];
    let word = u32::from_ne_bytes(key);
    let mut chunks = out.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
    out.freeze()
}

/// A close frame with `code` and `reason`; masked with `mask` when it goes to the upstream (a
/// client's frames must be).
fn close_frame(code: u16, reason: &str, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    let mut frame = vec![0x80 | CLOSE];
    let masked = u8::from(mask.is_some()) << 7;
    // At most 125 bytes: the one-byte length form.
    frame.push(masked | payload.len() as u8);
    if let Some(key) = mask {
        frame.extend_from_slice(&key);
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    frame.extend_from_slice(&payload);
    frame
}

/// Follows frame boundaries in a byte stream without keeping the frames.
#[derive(Default)]
struct Boundaries {
    /// The head read so far, when it is split over reads.
    head: Vec<u8>,
    /// Payload bytes still to come in the current frame.
    left: u64,
    /// A head that makes no sense: the boundaries are lost for good.
    lost: bool,
}

impl Boundaries {
    fn advance(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.lost {
            if self.left > 0 {
                let n = self.left.min(data.len() as u64);
                self.left -= n;
                data = &data[n as usize..];
                continue;
            }
            self.head.push(data[0]);
            data = &data[1..];
            match Head::parse(&self.head) {
                Ok(Some(head)) => {
                    self.left = head.payload;
                    self.head.clear();
                }
                Ok(None) => {}
                Err(_) => self.lost = true,
            }
        }
    }

    fn at_boundary(&self) -> bool {
        !self.lost && self.left == 0 && self.head.is_empty()
    }
}

#[cfg(test)]
mod tests;
