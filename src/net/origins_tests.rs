use std::sync::Arc;
use std::time::Duration;

use super::{AHEAD_PER_ORIGIN, KEEP_AHEAD, Negotiated, Origins, PROBE_WAIT};
use crate::net::DialError;
use crate::tls::Alpn;

/// A stand-in connection: which protocol it negotiated, and a number to tell them apart.
#[derive(Debug, PartialEq, Eq)]
struct Conn {
    h2: bool,
    n: u32,
}

impl Negotiated for Conn {
    fn speaks_h2(&self) -> bool {
        self.h2
    }
}

async fn answers(h2: bool, n: u32, after: Duration) -> Result<Conn, DialError> {
    tokio::time::sleep(after).await;
    Ok(Conn { h2, n })
}

async fn refused() -> Result<Conn, DialError> {
    Err(DialError::Timeout {
        host: "down.test".into(),
    })
}

#[tokio::test(start_paused = true)]
async fn an_origin_is_dialed_once_and_its_connection_carries_the_first_request() {
    let origins = Origins::<Conn>::new();
    let offer = origins
        .offer(
            "Old.Test",
            443,
            answers(false, 1, Duration::from_millis(30)),
        )
        .await;
    assert_eq!(offer, Alpn::H1Only);
    assert_eq!(origins.known("old.test", 443), Some(false));
    // Known now: no second dial, even one that would say otherwise.
    let offer = origins
        .offer("old.test", 443, answers(true, 2, Duration::ZERO))
        .await;
    assert_eq!(offer, Alpn::H1Only);
    assert_eq!(origins.kept(), 1);
    let first = origins.take("old.test", 443).await.unwrap().unwrap();
    assert_eq!(first, Conn { h2: false, n: 1 });
    assert!(origins.take("old.test", 443).await.is_none());
    assert_eq!(origins.kept(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_origin_that_speaks_h2_is_offered_both() {
    let origins = Origins::<Conn>::new();
    let offer = origins
        .offer("new.test", 443, answers(true, 1, Duration::ZERO))
        .await;
    assert_eq!(offer, Alpn::H2AndH1);
    assert_eq!(origins.known("new.test", 443), Some(true));
    // Another port is another origin.
    assert_eq!(origins.known("new.test", 8443), None);
}

#[tokio::test(start_paused = true)]
async fn a_slow_origin_is_offered_both_and_its_dial_still_serves_the_request() {
    let origins = Origins::<Conn>::new();
    let slow = PROBE_WAIT + Duration::from_secs(2);
    let offer = origins
        .offer("slow.test", 443, answers(false, 7, slow))
        .await;
    assert_eq!(offer, Alpn::H2AndH1);
    // The request waits for the dial already under way instead of making its own.
    let conn = origins.take("slow.test", 443).await.unwrap().unwrap();
    assert_eq!(conn.n, 7);
    assert_eq!(origins.known("slow.test", 443), Some(false));
}

#[tokio::test(start_paused = true)]
async fn a_failed_dial_is_offered_both_and_its_error_goes_to_the_request() {
    let origins = Origins::<Conn>::new();
    assert_eq!(
        origins.offer("down.test", 443, refused()).await,
        Alpn::H2AndH1
    );
    assert_eq!(origins.known("down.test", 443), None);
    let err = origins.take("down.test", 443).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), "connect_timeout");
}

#[tokio::test(start_paused = true)]
async fn an_untaken_connection_is_closed_after_a_while() {
    let origins = Origins::<Conn>::new();
    origins
        .offer("idle.test", 443, answers(true, 1, Duration::ZERO))
        .await;
    assert_eq!(origins.kept(), 1);
    tokio::time::sleep(KEEP_AHEAD + Duration::from_millis(10)).await;
    assert_eq!(origins.kept(), 0);
    assert!(origins.take("idle.test", 443).await.is_none());
    // What it learned stays.
    assert_eq!(origins.known("idle.test", 443), Some(true));
}

#[tokio::test(start_paused = true)]
async fn concurrent_first_handshakes_keep_a_bounded_number_of_dials() {
    let origins = Origins::<Conn>::new();
    let slow = PROBE_WAIT + Duration::from_secs(1);
    let offers: Vec<_> = (0..AHEAD_PER_ORIGIN as u32 + 3)
        .map(|n| {
            let origins = Arc::clone(&origins);
            tokio::spawn(async move {
                origins
                    .offer("busy.test", 443, answers(true, n, slow))
                    .await
            })
        })
        .collect();
    for offer in offers {
        assert_eq!(offer.await.unwrap(), Alpn::H2AndH1);
    }
    assert_eq!(origins.kept(), AHEAD_PER_ORIGIN);
    let mut taken = Vec::new();
    while let Some(conn) = origins.take("busy.test", 443).await {
        taken.push(conn.unwrap().n);
    }
    assert_eq!(taken.len(), AHEAD_PER_ORIGIN);
}
