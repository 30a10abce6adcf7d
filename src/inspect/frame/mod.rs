//! Splitting a body into files and text: Content-Encoding, multipart/form-data, forms, JSON.
