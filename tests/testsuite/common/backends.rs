//! The stores a test runs on, declared by the test itself with `on_backends!`: one test
//! per store, each with its servers on that store; a Redis case where no test Redis is
//! configured is skipped, saying so once, and fails under CI, which must test on Redis.

use std::cell::Cell;
use std::io::Write;
use std::sync::Once;

/// Env variable naming the standalone test Redis (`redis://127.0.0.1:6390`).
pub const REDIS_URL_ENV: &str = "SESSIOND_TEST_REDIS_URL";
/// Env variable naming the test Redis Cluster's seed nodes, comma-separated.
pub const REDIS_CLUSTER_URLS_ENV: &str = "SESSIOND_TEST_REDIS_CLUSTER_URLS";

/// How to get a test Redis, for the messages that say one is missing.
const HOW_TO_RUN: &str = "scripts/redis-test-env.sh start && \
                          eval \"$(scripts/redis-test-env.sh env)\" && cargo test";

/// A store the suite runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// sled in the server's temp data dir.
    Sled,
    /// The standalone test Redis (`SESSIOND_TEST_REDIS_URL`).
    Redis,
    /// The test Redis Cluster (`SESSIOND_TEST_REDIS_CLUSTER_URLS`).
    RedisCluster,
}

impl Backend {
    /// The env variable naming this backend's test Redis (None for sled).
    pub fn redis_env(self) -> Option<&'static str> {
        match self {
            Backend::Sled => None,
            Backend::Redis => Some(REDIS_URL_ENV),
            Backend::RedisCluster => Some(REDIS_CLUSTER_URLS_ENV),
        }
    }
}

/// Declares a test on the stores it names (`sled`, `redis`, `cluster`):
/// `on_backends!(start_works: sled, redis, cluster);` above `async fn start_works()` makes
/// the tests `start_works::sled`, `start_works::redis` and `start_works::cluster`, each
/// running the body with its `TestServer`s on that store. Anything after a `;` goes to
/// `#[tokio::test(...)]`; `; sync` declares a plain `fn` instead (a `#[test]`).
macro_rules! on_backends {
    (@backend sled) => { $crate::common::Backend::Sled };
    (@backend redis) => { $crate::common::Backend::Redis };
    (@backend cluster) => { $crate::common::Backend::RedisCluster };
    (@async [$attr:meta] $test:ident: $($backend:ident),+) => {
        mod $test {
            $(
                #[$attr]
                async fn $backend() {
                    if let Some(_on) = $crate::common::enter(on_backends!(@backend $backend)) {
                        super::$test().await;
                    }
                }
            )+
        }
    };
    ($test:ident: $($backend:ident),+; sync) => {
        mod $test {
            $(
                #[test]
                fn $backend() {
                    if let Some(_on) = $crate::common::enter(on_backends!(@backend $backend)) {
                        super::$test();
                    }
                }
            )+
        }
    };
    ($test:ident: $($backend:ident),+; $($tokio:tt)+) => {
        on_backends!(@async [tokio::test($($tokio)+)] $test: $($backend),+);
    };
    ($test:ident: $($backend:ident),+) => {
        on_backends!(@async [tokio::test] $test: $($backend),+);
    };
}

thread_local! {
    /// The backend of the test running on this thread, while `enter`'s guard lives.
    static CURRENT: Cell<Option<Backend>> = const { Cell::new(None) };
}

/// The backend of the running test (its `on_backends!` case).
pub fn backend() -> Backend {
    CURRENT.with(Cell::get).expect(
        "this test declares no backend: declare it with `on_backends!(name: sled, ...)` \
         (tests/README.md), and start its servers on the test's own thread",
    )
}

/// The running test's backend, until dropped.
pub struct Entered(());

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(None));
    }
}

/// Makes `backend` the running test's; None where it is a Redis with no test Redis
/// configured: the case is then skipped, and one line on stderr says so (under CI, where
/// Redis must be tested, it fails instead).
pub fn enter(backend: Backend) -> Option<Entered> {
    if backend
        .redis_env()
        .is_some_and(|var| configured_urls(var).is_empty())
    {
        skip();
        return None;
    }
    CURRENT.with(|current| current.set(Some(backend)));
    Some(Entered(()))
}

/// Says once per run that the Redis cases were skipped, and how to run them; under CI
/// (`CI` set) fails the case instead.
fn skip() {
    let unset: Vec<&str> = [REDIS_URL_ENV, REDIS_CLUSTER_URLS_ENV]
        .into_iter()
        .filter(|var| configured_urls(var).is_empty())
        .collect();
    let unset = unset.join(" and ");
    if std::env::var_os("CI").is_some() {
        panic!("{unset} not set under CI, which must test on Redis. Start the test Redis first: {HOW_TO_RUN}");
    }
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        // Straight to stderr: the test harness keeps a passing test's `eprintln!` to itself.
        let _ = writeln!(
            std::io::stderr(),
            "Redis suites skipped ({unset} not set: their cases pass without running). \
             To run them: {HOW_TO_RUN}"
        );
    });
}

/// The URLs of the test Redis in `var` (comma-separated); empty where it is not set.
fn configured_urls(var: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The URLs of the test Redis in `var`, or a panic that says how to get one.
pub fn redis_urls(var: &str) -> Vec<String> {
    let urls = configured_urls(var);
    assert!(
        !urls.is_empty(),
        "{var} is not set: the Redis test suites need a test Redis. Run `{HOW_TO_RUN}` first"
    );
    urls
}
