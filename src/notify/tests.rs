//! Tests of the delivery stage against fake tools over real TCP.
