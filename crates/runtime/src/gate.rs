//! A semaphore that hands its permits out by priority: when sandboxes must
//! be created on the request path (the warm pool is short), a request of a
//! higher-priority plan is served before lower ones that waited longer;
//! equal priorities are first come, first served.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

struct Waiter {
    priority: u8,
    seq: u64,
    tx: oneshot::Sender<Permit>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        (self.priority, self.seq) == (other.priority, other.seq)
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    /// Highest priority first, then the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority.cmp(&other.priority).then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
struct State {
    available: usize,
    next_seq: u64,
    waiting: BinaryHeap<Waiter>,
}

#[derive(Clone)]
pub struct PriorityGate {
    state: Arc<Mutex<State>>,
}

/// Held while creating; passed to the next waiter when dropped.
pub struct Permit {
    gate: Option<PriorityGate>,
}

impl PriorityGate {
    pub fn new(permits: usize) -> Self {
        Self { state: Arc::new(Mutex::new(State { available: permits.max(1), ..State::default() })) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a permit; cancel-safe (a dropped waiter passes on what it was given).
    pub async fn acquire(&self, priority: u8) -> Permit {
        let rx = {
            let mut s = self.lock();
            if s.available > 0 && s.waiting.is_empty() {
                s.available -= 1;
                return Permit { gate: Some(self.clone()) };
            }
            let (tx, rx) = oneshot::channel();
            let seq = s.next_seq;
            s.next_seq += 1;
            s.waiting.push(Waiter { priority, seq, tx });
            rx
        };
        match rx.await {
            Ok(p) => p,
            // The gate never drops a waiter's sender without sending.
            Err(_) => Permit { gate: None },
        }
    }

    /// Requests waiting for a permit.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    fn release(&self) {
        let mut s = self.lock();
        while let Some(w) = s.waiting.pop() {
            match w.tx.send(Permit { gate: Some(self.clone()) }) {
                Ok(()) => return,
                // That waiter is gone; the returned permit must not release
                // again while the lock is held.
                Err(mut p) => p.gate = None,
            }
        }
        s.available += 1;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(g) = self.gate.take() {
            g.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn higher_priority_waiters_go_first() {
        let gate = PriorityGate::new(1);
        let held = gate.acquire(0).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, prio) in [("low1", 0u8), ("low2", 0), ("high", 10), ("low3", 0)] {
            let (g, o) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _p = g.acquire(prio).await;
                o.lock().unwrap().push(name);
            }));
            // Let each one queue before the next.
            while gate.waiting() < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["high", "low1", "low2", "low3"]);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_does_not_lose_the_permit() {
        let gate = PriorityGate::new(1);
        let held = gate.acquire(0).await;
        let g = gate.clone();
        let cancelled = tokio::spawn(async move { g.acquire(5).await });
        while gate.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        cancelled.abort();
        let _ = cancelled.await;
        drop(held);
        // The permit is available again.
        let p = tokio::time::timeout(std::time::Duration::from_secs(5), gate.acquire(0)).await;
        assert!(p.is_ok());
    }
}
