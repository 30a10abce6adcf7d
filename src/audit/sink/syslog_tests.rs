use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;

use super::*;
use crate::audit::chain::verify_stream;
use crate::audit::event::{AuditEvent, EventAction};
use crate::audit::writer::write_one;

fn config(address: SyslogAddress) -> SyslogSinkConfig {
    SyslogSinkConfig {
        address,
        facility: 16,
        app_name: "sluis".into(),
        hostname: "proxy1".into(),
    }
}

fn send(sink: &mut SyslogSink, id: &str, severity: Severity) {
    let mut e = AuditEvent::new(
        id.into(),
        EventAction::Exchange,
        "127.0.0.1:1".parse().unwrap(),
        SystemTime::now(),
    );
    write_one(sink, &mut e, SystemTime::now(), severity, "exchange").unwrap();
    sink.flush().unwrap();
}

/// Splits an RFC 5424 message into header fields and MSG, checking the fixed parts.
fn parse(msg: &str) -> (u16, String, String) {
    let rest = msg.strip_prefix('<').unwrap();
    let (pri, rest) = rest.split_once('>').unwrap();
    let mut parts = rest.splitn(7, ' ');
    assert_eq!(parts.next(), Some("1"), "version");
    let ts = parts.next().unwrap();
    assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");
    assert_eq!(parts.next(), Some("proxy1"));
    assert_eq!(parts.next(), Some("sluis"));
    assert_eq!(parts.next(), Some(std::process::id().to_string().as_str()));
    let msgid = parts.next().unwrap().to_owned();
    let sd_and_msg = parts.next().unwrap();
    let json = sd_and_msg.strip_prefix("- ").unwrap().to_owned();
    (pri.parse().unwrap(), msgid, json)
}

#[test]
fn udp_receives_rfc5424() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let addr = rx.local_addr().unwrap().to_string();
    let mut sink = SyslogSink::new(config(SyslogAddress::Udp(addr))).unwrap();
    send(&mut sink, "A1", Severity::Info);
    send(&mut sink, "A2", Severity::Notice);
    let mut buf = [0u8; 65_536];
    let mut chain = Vec::new();
    for (want_pri, id) in [(134, "A1"), (133, "A2")] {
        let n = rx.recv(&mut buf).unwrap();
        let (pri, msgid, json) = parse(std::str::from_utf8(&buf[..n]).unwrap());
        assert_eq!(
            (pri, msgid.as_str()),
            (want_pri, "exchange"),
            "local0.info / local0.notice"
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["event"]["id"], id);
        chain.extend_from_slice(json.as_bytes());
        chain.push(b'\n');
    }
    let report = verify_stream(&chain[..]).unwrap();
    assert!(
        report.first_break.is_none(),
        "the syslog stream carries its own chain"
    );
}

#[test]
fn tcp_uses_octet_counting_and_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut sink = SyslogSink::new(config(SyslogAddress::Tcp(addr))).unwrap();
    let (conn, _) = listener.accept().unwrap();
    send(&mut sink, "T1", Severity::Info);
    send(&mut sink, "T2", Severity::Info);
    let mut r = BufReader::new(conn);
    for id in ["T1", "T2"] {
        let mut len = Vec::new();
        r.read_until(b' ', &mut len).unwrap();
        let len: usize = std::str::from_utf8(&len).unwrap().trim().parse().unwrap();
        let mut msg = vec![0u8; len];
        r.read_exact(&mut msg).unwrap();
        let (_, _, json) = parse(std::str::from_utf8(&msg).unwrap());
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["event"]["id"], id);
    }
    // The collector goes away: a write fails, the next one reconnects.
    drop(r);
    let mut failed = false;
    for i in 0..50 {
        let mut e = AuditEvent::new(
            format!("X{i}"),
            EventAction::Exchange,
            "127.0.0.1:1".parse().unwrap(),
            SystemTime::now(),
        );
        if write_one(
            &mut sink,
            &mut e,
            SystemTime::now(),
            Severity::Info,
            "exchange",
        )
        .and_then(|()| sink.flush())
        .is_err()
        {
            failed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(failed, "a closed collector is noticed");
    send(&mut sink, "T3", Severity::Info);
    let (conn, _) = listener.accept().unwrap();
    let mut r = BufReader::new(conn);
    let mut len = Vec::new();
    r.read_until(b' ', &mut len).unwrap();
    let len: usize = std::str::from_utf8(&len).unwrap().trim().parse().unwrap();
    let mut msg = vec![0u8; len];
    r.read_exact(&mut msg).unwrap();
    assert!(String::from_utf8(msg).unwrap().contains("\"T3\""));
}

#[test]
fn unix_datagram_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = SyslogSink::new(config(SyslogAddress::Unix(path))).unwrap();
    send(&mut sink, "U1", Severity::Info);
    let mut buf = [0u8; 65_536];
    let n = rx.recv(&mut buf).unwrap();
    let (pri, _, json) = parse(std::str::from_utf8(&buf[..n]).unwrap());
    assert_eq!(pri, 134);
    assert!(json.contains("\"U1\""));
}

#[test]
fn an_unreachable_collector_starts_failing_and_recovers_when_it_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut unix = SyslogSink::new(config(SyslogAddress::Unix(dir.path().join("none")))).unwrap();
    assert!(unix.prepare(SystemTime::now()).is_err());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut sink = SyslogSink::new(config(SyslogAddress::Tcp(addr.to_string()))).unwrap();
    assert!(
        sink.prepare(SystemTime::now()).is_err(),
        "nothing listens yet"
    );
    // The collector comes up on the same address: the next write reconnects.
    let listener = TcpListener::bind(addr).unwrap();
    sink.prepare(SystemTime::now()).unwrap();
    send(&mut sink, "late", Severity::Info);
    sink.flush().unwrap();
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = std::io::Read::read(&mut s, &mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("\"late\""));
}
