//! What one DPoP proof costs the server: `verify_proof` (parse, signature, claims) for an
//! Ed25519 and a P-256 device key, in CPU time per proof on one core (this thread's
//! time on a CPU, from /proc/thread-self/schedstat: other load on the machine does not
//! count), and in wall time.
//!
//! `cargo bench --bench proof_verify -- [PROOFS]` (default 20,000 per key). A benchmark,
//! not a test: it asserts only that every proof verifies, and prints figures.

use std::time::Instant;

use sessiond::session::binding::{verify_proof, DeviceSigner, ProofExpectations};

type Failure = Box<dyn std::error::Error + Send + Sync>;

const URL: &str = "http://sessiond/session.v1.SessionService/Refresh";
const TOKEN: &str = "rt_AaJLHQd5cAG8xCznUghtvx8m22C5wcupkjFFQpiPq-RBvS510Ty_jBf-l15sPlPF";
const NOW_MS: u64 = 1_767_225_600_000;

/// Nanoseconds this thread has run on a CPU.
fn thread_cpu_ns() -> Result<u64, Failure> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let first = stat.split_whitespace().next().ok_or("empty schedstat")?;
    Ok(first.parse()?)
}

fn main() -> Result<(), Failure> {
    let proofs: usize = std::env::args()
        .skip(1)
        .find(|arg| arg != "--bench")
        .map(|arg| arg.parse())
        .transpose()?
        .unwrap_or(20_000);
    for (name, device) in [
        ("Ed25519 (EdDSA)", DeviceSigner::generate_ed25519()?),
        ("P-256 (ES256)", DeviceSigner::generate_p256()?),
    ] {
        let made = (0..proofs)
            .map(|_| device.proof("POST", URL, TOKEN, None, NOW_MS))
            .collect::<Result<Vec<_>, _>>()?;
        let expected = ProofExpectations {
            thumbprint: Some(device.thumbprint()),
            method: "POST",
            uri: "/session.v1.SessionService/Refresh",
            token: TOKEN,
            now_ms: NOW_MS,
            max_skew_ms: 60_000,
        };
        let (started, cpu_started) = (Instant::now(), thread_cpu_ns()?);
        for proof in &made {
            verify_proof(proof, &expected).map_err(|failure| failure.reason())?;
        }
        let count = u32::try_from(proofs)?;
        let wall = started.elapsed() / count;
        let cpu = std::time::Duration::from_nanos(thread_cpu_ns()? - cpu_started) / count;
        println!("{name}: {proofs} proofs verified, {cpu:?} of CPU each ({wall:?} wall)");
    }
    Ok(())
}
