//! Redis's errors as store errors: the ones that pass by themselves (network, failover,
//! a busy or loading server) are `Unavailable`, so callers retry; the rest are engine
//! failures.

use redis::{ErrorKind, RedisError, RetryMethod};

use crate::store::StoreError;

/// An error of Redis's that retrying will not cure.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
struct RedisFailure(RedisError);

impl From<RedisError> for StoreError {
    fn from(error: RedisError) -> StoreError {
        // Not reachable now, but may be soon: the network, a node down or failing over,
        // no node of a cluster left, a server still loading or busy.
        if error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_cluster_error()
            || matches!(error.kind(), ErrorKind::ClusterConnectionNotFound)
            || matches!(error.retry_method(), RetryMethod::WaitAndRetry)
        {
            StoreError::Unavailable(error.to_string())
        } else {
            StoreError::Engine(Box::new(RedisFailure(error)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_errors_that_pass_are_unavailable_and_others_are_not() {
        let transient = [
            RedisError::from((ErrorKind::ClusterConnectionNotFound, "none")),
            RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        ];
        for error in transient {
            assert!(
                matches!(StoreError::from(error), StoreError::Unavailable(_)),
                "transient"
            );
        }
        let lasting = StoreError::from(RedisError::from((ErrorKind::Client, "bad call")));
        assert!(matches!(lasting, StoreError::Engine(_)));
        assert!(lasting.to_string().starts_with("redis: "), "{lasting}");
    }
}
