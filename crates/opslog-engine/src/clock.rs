//! The Lamport clock of multi-writer mode, with JavaScript number semantics (the exported
//! `LamportClock` holds a double, as the reference's does).

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LamportClock {
    counter: f64,
}

impl LamportClock {
    pub fn new(initial: f64) -> Self {
        LamportClock { counter: initial }
    }

    /// Advances for a local event and returns the new value.
    pub fn tick(&mut self) -> f64 {
        self.counter += 1.0;
        self.counter
    }

    /// Moves past a value seen from another writer and returns the new value.
    pub fn merge(&mut self, received: f64) -> f64 {
        // Math.max: NaN wins.
        let max = if self.counter.is_nan() || received.is_nan() {
            f64::NAN
        } else {
            self.counter.max(received)
        };
        self.counter = max + 1.0;
        self.counter
    }

    pub fn current(&self) -> f64 {
        self.counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_merges() {
        let mut c = LamportClock::new(0.0);
        assert_eq!(c.tick(), 1.0);
        assert_eq!(c.merge(10.0), 11.0);
        assert_eq!(c.merge(3.0), 12.0);
        assert_eq!(c.current(), 12.0);
        assert!(LamportClock::new(1.0).merge(f64::NAN).is_nan());
    }
}
