//! The syslog sink: RFC 5424 messages over UDP, TCP (octet counting, RFC 6587) or a unix
//! datagram socket, to feed an existing log pipeline and to keep a copy off the box.
//!
//! The MSG part is the JSON line, without a BOM so JSON parsers take it as it is; the hash chain
//! covers exactly those bytes. A broken TCP connection is reopened on the next line.

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, SystemTime};

use crate::audit::chain::ChainState;
use crate::audit::config::{SyslogAddress, SyslogSinkConfig};
use crate::audit::sink::{Severity, Sink, started_text};

/// A stalled collector must not hold the writer forever; the queue absorbs the rest.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct SyslogSink {
    config: SyslogSinkConfig,
    hostname: String,
    conn: Option<Conn>,
    chain: ChainState,
    msg: Vec<u8>,
}

enum Conn {
    Udp(UdpSocket),
    Tcp(io::BufWriter<TcpStream>),
    Unix(UnixDatagram),
}

// === impl SyslogSink ===

impl SyslogSink {
    /// Tries to connect at once. A collector that is down at start does not stop the proxy:
    /// the sink counts as failing (so `/readyz` says so and, with `audit.fail_closed`,
    /// inspected uploads wait) and reconnects before each write.
    pub(crate) fn new(config: SyslogSinkConfig) -> io::Result<Self> {
        let hostname = if config.hostname.is_empty() {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "-".to_owned())
        } else {
            config.hostname.clone()
        };
        let stream = match &config.address {
            SyslogAddress::Udp(a) => format!("syslog+udp://{a}"),
            SyslogAddress::Tcp(a) => format!("syslog+tcp://{a}"),
            SyslogAddress::Unix(p) => format!("syslog+unix://{}", p.display()),
        };
        let conn = match connect(&config.address) {
            Ok(conn) => Some(conn),
            Err(e) => {
                tracing::warn!(sink = %stream, error = %e, "syslog collector unreachable at start; will retry");
                None
            }
        };
        Ok(Self {
            chain: ChainState::new(stream, started_text(SystemTime::now()), None),
            config,
            hostname: header_field(&hostname, 255),
            conn,
            msg: Vec::with_capacity(1024),
        })
    }

    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`
    fn frame(&mut self, line: &[u8], severity: Severity, msgid: &str) {
        let sev = match severity {
            Severity::Notice => 5,
            Severity::Info => 6,
        };
        let pri = u16::from(self.config.facility) * 8 + sev;
        self.msg.clear();
        let _ = write!(
            self.msg,
            "<{pri}>1 {} {} {} {} {} - ",
            humantime::format_rfc3339_micros(SystemTime::now()),
            self.hostname,
            header_field(&self.config.app_name, 48),
            std::process::id(),
            header_field(msgid, 32),
        );
        self.msg.extend_from_slice(line);
    }
}

impl Sink for SyslogSink {
    fn kind(&self) -> &'static str {
        "syslog"
    }

    fn prepare(&mut self, _now: SystemTime) -> io::Result<()> {
        if self.conn.is_none() {
            self.conn = Some(connect(&self.config.address)?);
        }
        Ok(())
    }

    fn chain(&mut self) -> &mut ChainState {
        &mut self.chain
    }

    fn write_line(&mut self, line: &[u8], severity: Severity, msgid: &str) -> io::Result<()> {
        self.frame(line, severity, msgid);
        let Some(conn) = self.conn.as_mut() else {
            return Err(io::Error::other("syslog not connected"));
        };
        let res = match conn {
            Conn::Udp(s) => s.send(&self.msg).map(drop),
            Conn::Unix(s) => s.send(&self.msg).map(drop),
            Conn::Tcp(s) => {
                // RFC 6587 octet counting: "LEN SP MSG", no trailer.
                write!(s, "{} ", self.msg.len()).and_then(|()| s.write_all(&self.msg))
            }
        };
        if res.is_err() {
            self.conn = None;
        }
        res
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(Conn::Tcp(s)) = self.conn.as_mut()
            && let Err(e) = s.flush()
        {
            self.conn = None;
            return Err(e);
        }
        Ok(())
    }
}

fn connect(address: &SyslogAddress) -> io::Result<Conn> {
    match address {
        SyslogAddress::Udp(a) => {
            let target = a
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| io::Error::other(format!("{a}: no address")))?;
            let local = if target.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let s = UdpSocket::bind(local)?;
            s.connect(target)?;
            Ok(Conn::Udp(s))
        }
        SyslogAddress::Tcp(a) => {
            let target = a
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| io::Error::other(format!("{a}: no address")))?;
            let s = TcpStream::connect_timeout(&target, IO_TIMEOUT)?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            s.set_nodelay(true)?;
            Ok(Conn::Tcp(io::BufWriter::new(s)))
        }
        SyslogAddress::Unix(p) => {
            let s = UnixDatagram::unbound()?;
            s.connect(p)?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            Ok(Conn::Unix(s))
        }
    }
}

/// RFC 5424 header fields are printable US-ASCII without spaces; "-" when empty.
fn header_field(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() {
        "-".to_owned()
    } else {
        clean
    }
}

#[cfg(test)]
#[path = "syslog_tests.rs"]
mod tests;
