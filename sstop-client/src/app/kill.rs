//! The kill overlay: a signal list for one pinned process, then the daemon's answer.

use proto::{KillResult, Signal};

use crate::event::{Action, Event};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillOverlay {
    /// The target, fixed when the overlay opened: re-sorting rows never changes it.
    pub pid: u32,
    pub start_time: u64,
    pub name: String,
    /// Index into [`Signal::LISTED`].
    pub signal: usize,
    pub phase: KillPhase,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillPhase {
    Choosing,
    /// Request sent, no answer yet.
    Waiting(Signal),
    Answered(KillResult),
}

impl KillOverlay {
    pub fn new(pid: u32, start_time: u64, name: String) -> Self {
        KillOverlay {
            pid,
            start_time,
            name,
            signal: 0,
            phase: KillPhase::Choosing,
        }
    }

    pub fn chosen(&self) -> Signal {
        Signal::LISTED[self.signal.min(Signal::LISTED.len() - 1)]
    }

    pub fn answer(&mut self, result: KillResult) {
        if result.pid == self.pid {
            self.phase = KillPhase::Answered(result);
        }
    }

    /// Returns (close the overlay, action to perform).
    pub fn on_event(&mut self, event: &Event) -> (bool, Option<Action>) {
        let n = Signal::LISTED.len();
        match (&self.phase, event) {
            (_, Event::Back) => (true, None),
            (KillPhase::Choosing, Event::Up) => {
                self.signal = (self.signal + n - 1) % n;
                (false, None)
            }
            (KillPhase::Choosing, Event::Down) => {
                self.signal = (self.signal + 1) % n;
                (false, None)
            }
            (KillPhase::Choosing, Event::Home) => {
                self.signal = 0;
                (false, None)
            }
            (KillPhase::Choosing, Event::End) => {
                self.signal = n - 1;
                (false, None)
            }
            (KillPhase::Choosing, Event::Enter) => {
                let signal = self.chosen();
                self.phase = KillPhase::Waiting(signal);
                let action = Action::Kill {
                    pid: self.pid,
                    start_time: self.start_time,
                    signal,
                };
                (false, Some(action))
            }
            (KillPhase::Answered(_), Event::Enter) => (true, None),
            _ => (false, None),
        }
    }
}
