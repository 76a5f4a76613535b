//! The relay's buffer path (pipes scarce), attacked: as an unprivileged user (`nobody`, in a
//! child process of this test binary), idle relays first take the whole pipe budget; then
//! every attack of `common::relay_attacks` (urgent byte, answer then reset in both argument
//! orders, reset while idle, reset mid-upload, deadline with a stalled peer) runs on a relay
//! that must report `buffered`, and must end exactly as it does on pipes.

mod common;

use common::*;
use zcopy_core::{RelayReport, pipe_capacity_held};

/// Far more idle relays than a 32 MiB budget has pipes for (two per relay, at least 64 KiB
/// each): the loop stops at the first relay that gets no pipe.
const MAX_IDLE: usize = 600;

#[test]
fn relay_attacks_through_buffers() {
    let text = as_nobody("relay_attacks_through_buffers", scenario);
    for line in text
        .lines()
        .filter(|l| l.contains("idle relays") || l.contains("done"))
    {
        eprintln!("as nobody: {line}");
    }
}

fn scenario() {
    let mut idle = Vec::new();
    loop {
        let held = pipe_capacity_held();
        idle.push(relay_attacks::running_relay(|_| {}));
        if pipe_capacity_held() == held {
            break;
        }
        assert!(
            idle.len() < MAX_IDLE,
            "{MAX_IDLE} relays never exhausted the budget"
        );
    }
    eprintln!(
        "{} idle relays hold {} KiB of pipes",
        idle.len(),
        pipe_capacity_held() >> 10
    );
    let mut attacks: Vec<(&str, RelayReport)> = vec![
        ("urgent byte", relay_attacks::urgent_byte()),
        ("answer then reset", relay_attacks::answer_then_reset(false)),
        (
            "answer then reset, swapped",
            relay_attacks::answer_then_reset(true),
        ),
        ("reset while idle", relay_attacks::reset_while_idle()),
        (
            "deadline, stalled peer",
            relay_attacks::deadline_with_a_stalled_peer(),
        ),
    ];
    for round in 0..5 {
        let r = relay_attacks::into_reset_peer().unwrap_or_else(|e| panic!("round {round}: {e}"));
        attacks.push(("reset mid-upload", r));
    }
    for (name, report) in &attacks {
        assert!(report.buffered, "{name}: this relay had pipes: {report:?}");
    }
    for relay_attacks::Running { left, right, relay } in idle {
        drop((left, right));
        relay
            .join()
            .expect("idle relay thread")
            .expect("an idle relay ends cleanly when both sides close");
    }
    eprintln!(
        "scenario done: {} attacks, all through buffers",
        attacks.len()
    );
}
