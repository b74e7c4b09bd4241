//! Server CPU per call (`--server-pid`, `--reference-pid`): the process's user and
//! system CPU time from `/proc/<pid>/stat`, read before and after a phase and divided
//! by the phase's calls. Unlike calls per second it hardly moves with other load on a
//! shared machine, so it is the figure to compare across runs of a change.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// A process whose CPU time is read.
#[derive(Clone, Copy, Debug)]
pub struct CpuClock {
    pid: u32,
}

impl CpuClock {
    pub fn of(pid: Option<u32>) -> Option<CpuClock> {
        pid.map(|pid| CpuClock { pid })
    }

    /// User plus system time of every thread so far; None once the process is gone.
    pub fn read(self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // Fields after the command name (which may hold spaces), from field 3 on:
        // utime and stime are fields 14 and 15.
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
        let user: u64 = fields.next()?.parse().ok()?;
        let system: u64 = fields.next()?.parse().ok()?;
        Some(Duration::from_millis(
            (user + system) * 1000 / TICKS_PER_SECOND,
        ))
    }
}

/// The CPU a process spent over one phase.
#[derive(Clone, Copy, Debug)]
pub struct Spent {
    pub cpu: Duration,
    pub calls: u64,
    pub elapsed: Duration,
}

impl Spent {
    /// Microseconds of CPU per call.
    pub fn per_call_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.calls.max(1) as f64
    }

    /// `name: 21.4 µs of server CPU per call (1.12 cores)`, with its ratio to `base`.
    pub fn line(&self, name: &str, base: Option<&Spent>) -> String {
        let cores = self.cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9);
        let ratio = base
            .map(|base| {
                format!(
                    ", {:.2}× the baseline's",
                    self.per_call_us() / base.per_call_us()
                )
            })
            .unwrap_or_default();
        format!(
            "server CPU, {name}: {:.1} µs per call ({cores:.2} cores){ratio}",
            self.per_call_us()
        )
    }
}

/// A process's CPU time at the start of a phase.
#[derive(Clone, Copy, Debug)]
pub struct Mark(Option<(CpuClock, Duration)>);

impl Mark {
    pub fn start(clock: Option<CpuClock>) -> Mark {
        Mark(clock.and_then(|clock| Some((clock, clock.read()?))))
    }

    /// What the process spent since, over `calls` calls in `elapsed`.
    pub fn spent(self, calls: u64, elapsed: Duration) -> Option<Spent> {
        let (clock, before) = self.0?;
        Some(Spent {
            cpu: clock.read()?.saturating_sub(before),
            calls,
            elapsed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let clock = CpuClock::of(Some(std::process::id())).expect("a clock");
        let start = clock.read().expect("our own stat");
        let mut spin = 0u64;
        while clock.read().expect("stat") < start + Duration::from_millis(30) {
            spin = spin.wrapping_add(1);
        }
        assert!(spin > 0);
    }
}
