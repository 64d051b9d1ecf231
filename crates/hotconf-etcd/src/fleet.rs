//! Fleet status: each instance reports what it applied under the status prefix
//! ([`Reporter`]), and [`fleet_status`] tells, for every live instance, whether it runs what
//! is under the prefix now: SYNCED, RESTART, NACKED or PENDING.

mod record;
mod reporter;
mod status;

pub use record::{Located, Record};
pub use reporter::{Reporter, ReporterBuilder};
pub use status::{FleetStatus, Instance, State, fleet_status, fleet_status_blocking};
