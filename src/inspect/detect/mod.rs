//! Detectors over extracted text: classification markings, BSN, IBAN, payment cards, secrets.
