//! Range checks for numeric settings (learning rates, momenta, smoothing, ...): each setting
//! is checked where its config type is, and the error names the setting and what it may be.

/// A numeric setting outside the values it can take. `name` is the config field
/// (`lr`, `label_smoothing`); [`OutOfRange::flag`] spells it as a command-line flag.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{name} = {value} is out of range: it must be {allowed}")]
pub struct OutOfRange {
    pub name: &'static str,
    pub value: f64,
    pub allowed: &'static str,
}

impl OutOfRange {
    /// The same error naming the flag `--lr`, `--label-smoothing`, ... instead of the field.
    pub fn flag(&self) -> String {
        format!("--{} {} is out of range: it must be {}", self.name.replace('_', "-"), self.value, self.allowed)
    }
}

/// Which values a setting may take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Allowed {
    /// finite and > 0
    Positive,
    /// finite and >= 0
    NonNegative,
    /// in [0, 1)
    Fraction,
    /// in [0, 1]
    Probability,
}

impl Allowed {
    fn admits(self, v: f64) -> bool {
        match self {
            Allowed::Positive => v.is_finite() && v > 0.0,
            Allowed::NonNegative => v.is_finite() && v >= 0.0,
            Allowed::Fraction => (0.0..1.0).contains(&v),
            Allowed::Probability => (0.0..=1.0).contains(&v),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Allowed::Positive => "a finite number > 0",
            Allowed::NonNegative => "a finite number >= 0",
            Allowed::Fraction => "in [0, 1)",
            Allowed::Probability => "in [0, 1]",
        }
    }

    /// `Ok` when `value` is allowed, else the error naming `name`.
    pub fn check(self, name: &'static str, value: f64) -> Result<(), OutOfRange> {
        if self.admits(value) {
            Ok(())
        } else {
            Err(OutOfRange { name, value, allowed: self.describe() })
        }
    }
}

/// A count that must be at least 1 (epochs, batch size, ...).
pub fn at_least_one(name: &'static str, value: usize) -> Result<(), OutOfRange> {
    if value >= 1 {
        Ok(())
    } else {
        Err(OutOfRange { name, value: value as f64, allowed: "at least 1" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_range_refuses_non_finite_and_outside_values() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0] {
            for a in [Allowed::Positive, Allowed::NonNegative, Allowed::Fraction, Allowed::Probability] {
                assert!(a.check("x", v).is_err(), "{a:?} admitted {v}");
            }
        }
        assert!(Allowed::Positive.check("lr", 0.0).is_err());
        assert!(Allowed::NonNegative.check("weight_decay", 0.0).is_ok());
        assert!(Allowed::Fraction.check("label_smoothing", 1.0).is_err());
        assert!(Allowed::Fraction.check("label_smoothing", 0.1).is_ok());
        assert!(Allowed::Probability.check("p", 1.0).is_ok());
        assert!(at_least_one("epochs", 0).is_err() && at_least_one("epochs", 1).is_ok());
    }

    #[test]
    fn errors_name_the_field_or_the_flag_and_the_range() {
        let e = Allowed::Fraction.check("label_smoothing", 2.0).unwrap_err();
        assert_eq!(e.to_string(), "label_smoothing = 2 is out of range: it must be in [0, 1)");
        assert_eq!(e.flag(), "--label-smoothing 2 is out of range: it must be in [0, 1)");
        let e = Allowed::Positive.check("lr", f64::NAN).unwrap_err();
        assert_eq!(e.flag(), "--lr NaN is out of range: it must be a finite number > 0");
    }
}
