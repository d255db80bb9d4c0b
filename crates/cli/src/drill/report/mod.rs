//! The drill's record and its three views: every state of both machines
//! with start, end, attempts and errors, collected while the executions run
//! ([`record`]), printed as a text timeline after each run ([`text`]),
//! serialised into the `--json` report (`states`: [`Span`]) and drawn as a
//! self-contained HTML page ([`html`]).

mod html;
mod record;
mod text;

#[cfg(test)]
mod browser_tests;
#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;

pub use html::{Page, Side, Table, html_page};
pub use record::{Lanes, Outcome, Record, Recorder, Span, child_lane};
pub use text::text_timeline;
