//! What one DPoP proof costs the server: `verify_proof` (parse, signature, claims) for an
//! Ed25519 and a P-256 device key, in CPU time per proof on one core.
//!
//! `cargo bench --bench proof_verify -- [PROOFS]` (default 20,000 per key). A benchmark,
//! not a test: it asserts only that every proof verifies, and prints figures.

use std::time::Instant;

use sessiond::session::binding::{verify_proof, DeviceSigner, ProofExpectations};

type Failure = Box<dyn std::error::Error + Send + Sync>;

const URL: &str = "http://sessiond/session.v1.SessionService/Refresh";
const TOKEN: &str = "rt_AaJLHQd5cAG8xCznUghtvx8m22C5wcupkjFFQpiPq-RBvS510Ty_jBf-l15sPlPF";
const NOW_MS: u64 = 1_767_225_600_000;

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
        let started = Instant::now();
        for proof in &made {
            verify_proof(proof, &expected).map_err(|failure| failure.reason())?;
        }
        let per_proof = started.elapsed() / u32::try_from(proofs)?;
        println!("{name}: {proofs} proofs verified, {per_proof:?} each");
    }
    Ok(())
}
