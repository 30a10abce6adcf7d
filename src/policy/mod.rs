//! The admin policy: service categories, internal domains, ordered rules.
