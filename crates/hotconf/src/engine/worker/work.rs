//! Work the gate can defer: a reload of the sources (which coalesce) or one programmatic
//! change (which keep their order).

use super::ConfigChange;
use crate::engine::gate::Coalesce;
use crate::event::Trigger;
use crate::trigger::{Mode, Reply};

/// Work the gate can defer.
pub(super) enum Work<T> {
    Sources {
        trigger: Trigger,
        mode: Mode,
        by: Option<String>,
        replies: Vec<Reply>,
        /// Every source re-reads everything.
        full: bool,
    },
    Config {
        change: ConfigChange<T>,
        trigger: Trigger,
        by: Option<String>,
        reply: Option<Reply>,
    },
}

impl<T> Work<T> {
    pub(super) fn trigger(&self) -> Trigger {
        match self {
            Self::Sources { trigger, .. } | Self::Config { trigger, .. } => *trigger,
        }
    }

    pub(super) fn by(&self) -> Option<String> {
        match self {
            Self::Sources { by, .. } | Self::Config { by, .. } => by.clone(),
        }
    }

    pub(super) fn take_replies(&mut self) -> Vec<Reply> {
        match self {
            Self::Sources { replies, .. } => std::mem::take(replies),
            Self::Config { reply, .. } => reply.take().into_iter().collect(),
        }
    }
}

impl<T> Coalesce for Work<T> {
    fn absorb(&mut self, later: Self) -> Option<Self> {
        match (self, later) {
            (
                Self::Sources {
                    trigger,
                    mode,
                    by,
                    replies,
                    full,
                },
                Self::Sources {
                    trigger: later_trigger,
                    mode: later_mode,
                    by: later_by,
                    replies: later_replies,
                    full: later_full,
                },
            ) => {
                // The most insistent request decides; an explicit trigger names the reload
                // over the watcher's.
                if later_mode > *mode {
                    *mode = later_mode;
                    *trigger = later_trigger;
                    *by = later_by;
                }
                replies.extend(later_replies);
                // One read serves both: it must be as thorough as either asked.
                *full |= later_full;
                None
            }
            (_, later) => Some(later),
        }
    }
}
