//! Unit tests of `correlate`, one file per concern (the operational correlator is exercised
//! through the engine's tests).

mod order;
mod route;
mod security;
