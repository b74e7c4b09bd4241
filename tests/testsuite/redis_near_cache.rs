//! The Redis near cache (docs/redis.md, "Near cache") with two real `sessiond` processes
//! on one Redis Cluster, both caching: a Logout on A is refused by B within the
//! staleness bound of A's reply; a change through a server is seen by its very next
//! call; a hung or dead cluster node stops B's cache answering within the bound.

use crate::common;
use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::REDIS_CLUSTER_URLS_ENV;
use sessiond::proto::session::v1::{LogoutRequest, StartResponse};
use support::*;
use tempfile::TempDir;
use tonic::Code;

/// `near_cache_staleness` of both servers.
const STALENESS: Duration = Duration::from_millis(100);
/// A late OK is timed from after A's reply (after Redis committed the Logout) to before
/// B was asked (before B decided), which can only shorten what the rule bounds; the
/// margin covers nothing but clock reads.
const MARGIN: Duration = Duration::from_millis(5);
/// Sessions logged out on A and watched on B.
const SESSIONS: usize = 200;

/// Servers A and B on one cluster and key prefix, near cache on; B serves metrics.
struct Near {
    a: Daemon,
    b: Daemon,
    b_metrics: SocketAddr,
    key_prefix: String,
    // Dropped last: the processes go first.
    _dir: TempDir,
}

/// A and B on `a_urls` and `b_urls` (the same Redis, reached as different users if the
/// test wants), a Redis Cluster if `cluster`.
async fn near_pair(a_urls: &[String], b_urls: &[String], cluster: bool) -> Near {
    let dir = tempfile::tempdir().expect("temp dir");
    let key_prefix = common::unique_key_prefix();
    let b_metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut daemons = Vec::new();
    for (name, urls, extra) in [
        ("a", a_urls, String::new()),
        ("b", b_urls, format!("metrics_listen = \"{b_metrics}\"\n")),
    ] {
        let config = dir.path().join(format!("{name}.toml"));
        let text = format!(
            "store = \"redis\"\n{extra}{}near_cache = true\nnear_cache_staleness = \"{}ms\"\n",
            common::redis_table(urls, cluster, &key_prefix),
            STALENESS.as_millis()
        );
        std::fs::write(&config, text).expect("write config");
        let mut daemon = Daemon::spawn(
            &dir.path().join(format!("{name}-data")),
            &dir.path().join(format!("{name}.log")),
            "info",
            ["--config", config.to_str().expect("utf-8 temp path")],
        );
        daemon.serving().await;
        daemons.push(daemon);
    }
    let (b, a) = (daemons.pop(), daemons.pop());
    Near {
        a: a.expect("A started"),
        b: b.expect("B started"),
        b_metrics,
        key_prefix,
        _dir: dir,
    }
}

/// B's answers to a token after A logged its session out.
#[derive(Default)]
struct Late {
    /// OKs B gave after A's reply.
    oks: usize,
    /// How long after A's reply the last of them was asked.
    latest: Duration,
    /// UNAVAILABLE answers (a cluster node down): no OK, and worth retrying.
    unavailable: usize,
}

/// Logs `token`'s session out on A (again while UNAVAILABLE: a node is down), then asks
/// B in a tight loop until B refuses it.
async fn logout_then_ask(a: &mut Client, b: &mut Client, token: &str) -> Late {
    let request = LogoutRequest {
        session_token: token.to_owned(),
        ..Default::default()
    };
    let mut attempts = 0;
    while let Err(status) = logout(a, request.clone()).await {
        attempts += 1;
        assert!(
            status.code() == Code::Unavailable && attempts < 100,
            "Logout on A: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let replied = Instant::now();
    let mut late = Late::default();
    loop {
        let asked = Instant::now();
        match whoami(b, token).await {
            Ok(_) => {
                late.oks += 1;
                late.latest = asked - replied;
            }
            Err(status) if status.code() == Code::Unavailable => late.unavailable += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
                return late;
            }
        }
        assert!(
            replied.elapsed() < Duration::from_secs(10),
            "B still accepts the token 10 s after the Logout on A"
        );
    }
}

/// Starts a session on A and has B read it twice (so B caches it).
async fn seen_by_b(a: &mut Client, b: &mut Client, user: &str) -> StartResponse {
    let started = start_session(a, user).await;
    for _ in 0..2 {
        whoami_ok(b, &started.session_token).await;
    }
    started
}

/// Asks B about `token` until B answers it from its near cache (the tail may first drop
/// what B cached, on hearing of the Start).
async fn cached_on_b(near: &Near, b: &mut Client, token: &str) {
    for _ in 0..100 {
        let before = counter(&scrape_metrics(near.b_metrics).await, HITS);
        whoami_ok(b, token).await;
        if counter(&scrape_metrics(near.b_metrics).await, HITS) > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("B never answered from its near cache");
}

/// B's near cache hits.
const HITS: &str = "sessiond_near_cache_hits_total";

/// A counter's value in a Prometheus scrape (0 when absent).
fn counter(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

on_backends!(a_logout_on_one_server_is_refused_by_the_other_within_the_bound: cluster);
async fn a_logout_on_one_server_is_refused_by_the_other_within_the_bound() {
    let urls = common::redis_urls(REDIS_CLUSTER_URLS_ENV);
    let near = near_pair(&urls, &urls, true).await;
    let (mut a, mut b) = (near.a.client().await, near.b.client().await);
    let (mut late_oks, mut late_sessions, mut latest) = (0, 0, Duration::ZERO);
    for n in 0..SESSIONS {
        let started = seen_by_b(&mut a, &mut b, &format!("user-{n}")).await;
        let late = logout_then_ask(&mut a, &mut b, &started.session_token).await;
        late_oks += late.oks;
        late_sessions += usize::from(late.oks > 0);
        latest = latest.max(late.latest);
    }
    let scrape = scrape_metrics(near.b_metrics).await;
    let hits = counter(&scrape, HITS);
    eprintln!(
        "near cache: {SESSIONS} Logouts on A; B answered OK after A's reply {late_oks} times \
         for {late_sessions} sessions, the latest asked {latest:?} after the reply \
         (bound {STALENESS:?}); B's cache hits: {hits}"
    );
    assert!(
        latest <= STALENESS + MARGIN,
        "B answered OK {latest:?} after A's Logout (bound {STALENESS:?})"
    );
    assert!(hits > 0.0, "B answered nothing from its near cache");
}

on_backends!(a_change_through_a_server_is_seen_by_its_next_call: cluster);
async fn a_change_through_a_server_is_seen_by_its_next_call() {
    let urls = common::redis_urls(REDIS_CLUSTER_URLS_ENV);
    let near = near_pair(&urls, &urls, true).await;
    let (mut a, mut b) = (near.a.client().await, near.b.client().await);

    // Logout through B: B's next Whoami refuses it.
    let started = seen_by_b(&mut a, &mut b, "logout").await;
    assert_eq!(logout_token(&mut b, &started.session_token).await, 1);
    assert_code(
        whoami(&mut b, &started.session_token).await,
        Code::Unauthenticated,
    );

    // Refresh through B: the old token is refused, the new one accepted, at once.
    let started = seen_by_b(&mut a, &mut b, "refresh").await;
    let refreshed = refresh_ok(&mut b, &started.refresh_token).await;
    assert_code(
        whoami(&mut b, &started.session_token).await,
        Code::Unauthenticated,
    );
    whoami_ok(&mut b, &refreshed.session_token).await;

    // Refresh through A: B's cached copy may accept, never refuse, so the new token
    // works on B at once.
    let started = seen_by_b(&mut a, &mut b, "elsewhere").await;
    let refreshed = refresh_ok(&mut a, &started.refresh_token).await;
    whoami_ok(&mut b, &refreshed.session_token).await;
}

on_backends!(a_hung_node_stops_the_near_cache_within_the_bound: cluster);
/// On a cluster of the test's own: B caches a session; another node than the one that
/// holds it hangs (SIGSTOP: connections stay open, nothing answers), so B's tail stalls;
/// a Logout on A (on the healthy node) is then refused by B within the bound, and B
/// still answers from Redis.
async fn a_hung_node_stops_the_near_cache_within_the_bound() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = RedisCluster::start(&dir.path().join("cluster"));
    let near = near_pair(&cluster.urls(), &cluster.urls(), true).await;
    let (mut a, mut b) = (near.a.client().await, near.b.client().await);
    let doomed = seen_by_b(&mut a, &mut b, "doomed").await;
    // The same user: its shard is on the same node.
    let kept = seen_by_b(&mut a, &mut b, "doomed").await;
    cached_on_b(&near, &mut b, &doomed.session_token).await;

    let home = home_node(&cluster, &near.key_prefix, &doomed).await;
    let failing = (home + 1) % cluster.nodes.len();
    cluster.nodes[failing].freeze();

    let late = logout_then_ask(&mut a, &mut b, &doomed.session_token).await;
    eprintln!(
        "near cache, node down: B answered OK {} times after A's Logout, the latest asked \
         {:?} after it (bound {STALENESS:?}); UNAVAILABLE {} times",
        late.oks, late.latest, late.unavailable
    );
    assert!(
        late.latest <= STALENESS + MARGIN,
        "B answered OK {:?} after A's Logout with its tail cut off",
        late.latest
    );
    // The same user's shard is on the healthy node: B answers it from Redis.
    whoami_ok(&mut b, &kept.session_token).await;
    cluster.nodes[failing].thaw();
}

on_backends!(a_failed_tail_stops_the_near_cache_at_once: redis);
async fn a_failed_tail_stops_the_near_cache_at_once() {
    // B reaches a Redis of the test's own as a user of its own, so the test can refuse
    // XREAD, which only B's tail sends: everything else B does keeps working.
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = RedisServer::start(free_port(), &dir.path().join("redis"));
    let client = redis::Client::open(redis.url()).expect("a redis URL");
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test's Redis");
    let acl = |rules: &[&str]| {
        let mut command = redis::cmd("ACL");
        command.arg("SETUSER").arg("b").arg(rules);
        command
    };
    let _: () = acl(&["on", ">b-secret", "~*", "&*", "+@all"])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER");
    let b_url = format!("redis://b:b-secret@127.0.0.1:{}", redis.port);
    let near = near_pair(&[redis.url()], &[b_url], false).await;
    let (mut a, mut b) = (near.a.client().await, near.b.client().await);
    let doomed = seen_by_b(&mut a, &mut b, "doomed").await;
    cached_on_b(&near, &mut b, &doomed.session_token).await;

    let _: () = acl(&["-xread"])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER");
    // Once B says its tail failed, its cache answers nothing: not even within the bound.
    for attempt in 0.. {
        if near.b.log_text().contains("cannot read the change streams") {
            break;
        }
        assert!(
            attempt < 500,
            "B's tail never failed:\n{}",
            near.b.log_text()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let late = logout_then_ask(&mut a, &mut b, &doomed.session_token).await;
    assert_eq!(
        late.oks, 0,
        "B answered from its cache after its tail failed"
    );
}

/// The index in `cluster.nodes` of the node holding `started`'s record.
async fn home_node(cluster: &RedisCluster, key_prefix: &str, started: &StartResponse) -> usize {
    let id = uuid::Uuid::parse_str(&session_of(&started.session).session_id).expect("a uuid");
    let bytes = id.as_bytes();
    let shard = u16::from_be_bytes([bytes[14], bytes[15]]) % 32;
    let key = format!("{key_prefix}:{{s{shard}}}:s:{}", id.simple());
    for (index, node) in cluster.nodes.iter().enumerate() {
        let client = redis::Client::open(node.url()).expect("a redis URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to a node");
        // Nodes that do not hold the key's slot answer MOVED.
        if let Ok(1) = redis::cmd("EXISTS")
            .arg(&key)
            .query_async::<i64>(&mut conn)
            .await
        {
            return index;
        }
    }
    panic!("no node holds {key}");
}
