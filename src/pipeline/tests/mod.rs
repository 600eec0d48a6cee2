//! Unit tests of the Kafka shell's pure parts: the view and the incident timeline.

mod view;
