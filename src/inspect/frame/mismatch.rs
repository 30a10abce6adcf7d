//! Whether what the client declared (Content-Type, file name extension) contradicts the type
//! sniffed from the bytes. Generic declarations (`application/octet-stream`, an unknown
//! extension) contradict nothing; related types (an encrypted docx is an OLE container, a
//! `.doc` is often RTF) do not count as contradictions.

use crate::inspect::report::FileType;
use crate::inspect::report::FileType as T;

const TEXT: &[FileType] = &[T::Text, T::Csv, T::Json, T::Xml, T::Html, T::Script];
const ZIPS: &[FileType] = &[
    T::Zip,
    T::Docx,
    T::Xlsx,
    T::Pptx,
    T::Odt,
    T::Ods,
    T::Odp,
    T::Epub,
    T::Jar,
    T::Apk,
];

/// True if the declared type or the name's extension rules out `sniffed`.
pub(crate) fn type_mismatch(sniffed: FileType, declared: Option<&str>, name: Option<&str>) -> bool {
    let by_type =
        declared.and_then(|d| expected_for_media_type(d.split(';').next().unwrap_or("").trim()));
    let by_name = name
        .and_then(extension)
        .and_then(|e| expected_for_extension(&e));
    [by_type, by_name]
        .into_iter()
        .flatten()
        .any(|allowed| !allowed.contains(&sniffed))
}

fn extension(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next()?;
    let (stem, ext) = base.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

fn expected_for_extension(ext: &str) -> Option<&'static [FileType]> {
    Some(match ext {
        "txt" | "text" | "log" | "md" | "csv" | "tsv" | "json" | "xml" | "html" | "htm" | "svg" => {
            TEXT
        }
        "sh" | "py" | "pl" | "rb" => &[T::Script, T::Text],
        "pdf" => &[T::Pdf],
        "zip" => ZIPS,
        "docx" | "docm" | "dotx" => &[T::Docx, T::Zip, T::OoxmlEncrypted, T::Cfb],
        "xlsx" | "xlsm" | "xltx" => &[T::Xlsx, T::Zip, T::OoxmlEncrypted, T::Cfb],
        "pptx" | "pptm" | "potx" => &[T::Pptx, T::Zip, T::OoxmlEncrypted, T::Cfb],
        "doc" | "dot" => &[T::Doc, T::Cfb, T::Rtf],
        "xls" => &[T::Xls, T::Cfb],
        "ppt" => &[T::Ppt, T::Cfb],
        "odt" => &[T::Odt, T::Zip],
        "ods" => &[T::Ods, T::Zip],
        "odp" => &[T::Odp, T::Zip],
        "epub" => &[T::Epub, T::Zip],
        "rtf" => &[T::Rtf],
        "7z" => &[T::SevenZip],
        "rar" => &[T::Rar],
        "gz" | "tgz" => &[T::Gzip],
        "bz2" => &[T::Bzip2],
        "xz" => &[T::Xz],
        "zst" => &[T::Zstd],
        "gpg" | "pgp" => &[T::Openpgp, T::OpenpgpArmored],
        "asc" => &[T::OpenpgpArmored, T::Text],
        "age" => &[T::Age],
        "p7m" => &[T::Cms],
        "jpg" | "jpeg" => &[T::Jpeg],
        "png" => &[T::Png],
        "gif" => &[T::Gif],
        "webp" => &[T::Webp],
        "mp4" | "m4a" | "mov" => &[T::Mp4],
        "mp3" => &[T::Mp3],
        "exe" | "dll" => &[T::Exe],
        "msi" => &[T::Msi, T::Cfb],
        "jar" => &[T::Jar, T::Zip],
        "apk" => &[T::Apk, T::Zip],
        "class" => &[T::JavaClass],
        _ => return None,
    })
}

fn expected_for_media_type(mt: &str) -> Option<&'static [FileType]> {
    let mt = mt.to_ascii_lowercase();
    Some(match mt.as_str() {
        "text/plain" | "text/csv" | "application/json" | "text/xml" | "application/xml"
        | "text/html" => TEXT,
        "application/pdf" => &[T::Pdf],
        "application/zip" | "application/x-zip-compressed" => ZIPS,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
            &[T::Docx, T::Zip, T::OoxmlEncrypted, T::Cfb]
        }
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
            &[T::Xlsx, T::Zip, T::OoxmlEncrypted, T::Cfb]
        }
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
            &[T::Pptx, T::Zip, T::OoxmlEncrypted, T::Cfb]
        }
        "application/msword" => &[T::Doc, T::Cfb, T::Rtf],
        "application/vnd.ms-excel" => &[T::Xls, T::Cfb],
        "application/vnd.ms-powerpoint" => &[T::Ppt, T::Cfb],
        "application/x-7z-compressed" => &[T::SevenZip],
        "application/vnd.rar" | "application/x-rar-compressed" => &[T::Rar],
        "application/gzip" | "application/x-gzip" => &[T::Gzip],
        "application/pgp-encrypted" => &[T::Openpgp, T::OpenpgpArmored],
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => &[T::Cms],
        "image/jpeg" => &[T::Jpeg],
        "image/png" => &[T::Png],
        "image/gif" => &[T::Gif],
        "image/webp" => &[T::Webp],
        "video/mp4" => &[T::Mp4],
        "audio/mpeg" => &[T::Mp3],
        "application/x-msdownload" | "application/vnd.microsoft.portable-executable" => &[T::Exe],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatches() {
        assert!(!type_mismatch(
            T::Pdf,
            Some("application/pdf"),
            Some("a.pdf")
        ));
        assert!(type_mismatch(T::Zip, Some("application/pdf"), None));
        assert!(type_mismatch(T::Exe, None, Some("holiday.jpg")));
        assert!(!type_mismatch(
            T::Exe,
            Some("application/octet-stream"),
            Some("tool")
        ));
        assert!(!type_mismatch(T::OoxmlEncrypted, None, Some("Plan.DOCX")));
        assert!(!type_mismatch(
            T::Csv,
            Some("text/plain; charset=utf-8"),
            Some("x.txt")
        ));
        assert!(type_mismatch(T::Unknown, None, Some("report.pdf")));
        assert!(!type_mismatch(T::Unknown, None, Some(".bashrc")));
    }
}
