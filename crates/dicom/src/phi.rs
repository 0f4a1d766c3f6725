//! A wrapper for patient-identifying values that cannot end up in a log by accident.

use std::fmt;

/// Patient-identifying value (name, patient ID, accession number).
///
/// `Debug` and `Display` print `[redacted]`, so a `{:?}` of a struct holding it, a `tracing`
/// field or an error message never carries the value. Code that really needs the value (a
/// worklist shown to an authorised reader, de-identification) calls [`Phi::expose`], which is
/// easy to find in review.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Phi<T>(T);

impl<T> Phi<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Phi(value)
    }

    /// The value itself. Never log it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value. Never log it.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Phi<T> {
    fn from(value: T) -> Self {
        Phi(value)
    }
}

/// On the wire a `Phi<T>` is its value: messages between authenticated peers carry patient
/// data; only logs and error texts must not.
impl<T: serde::Serialize> serde::Serialize for Phi<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Phi<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Phi)
    }
}

impl<T> fmt::Debug for Phi<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Phi<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::Phi;

    #[test]
    fn debug_and_display_redact() {
        let p = Phi::new(String::from("王^小东"));
        assert_eq!(format!("{p:?}"), "[redacted]");
        assert_eq!(format!("{p}"), "[redacted]");
        assert_eq!(format!("{p:#?}"), "[redacted]");
        assert_eq!(p.expose(), "王^小东");
        assert_eq!(p.clone(), Phi::new(String::from("王^小东")));
        assert_eq!(Phi::<String>::default().into_inner(), "");
    }
}
