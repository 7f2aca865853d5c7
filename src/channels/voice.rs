//! The documents a call reads: TwiML/cXML/TeXML (`<Say>`) and Plivo XML (`<Speak>`).
//! Rendered by askama from `templates/voice/`, so every text is XML-escaped.

use askama::Template;

use super::CallScript;

#[derive(Template)]
#[template(path = "voice/say.xml")]
struct SayDocument<'a> {
    said: &'a str,
    language: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "voice/speak.xml")]
struct SpeakDocument<'a> {
    said: &'a str,
    language: Option<&'a str>,
}

/// TwiML, SignalWire cXML and Telnyx TeXML: pause, say the code, pause, say it again, hang
/// up; in the script's language (`<Say language="es-ES">`) when it is not English.
pub fn say_document(script: &CallScript) -> String {
    let said = script.said();
    SayDocument {
        said: &said,
        language: script.language,
    }
    .render()
    .expect("voice template renders")
}

/// Plivo XML: the same with `<Wait>` and `<Speak language="...">`.
pub fn speak_document(script: &CallScript) -> String {
    let said = script.said();
    SpeakDocument {
        said: &said,
        language: script.language,
    }
    .render()
    .expect("voice template renders")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(intro: &str) -> CallScript {
        CallScript::test(&format!("{intro} {{code}}."), "123456")
    }

    #[test]
    fn the_say_document_reads_the_code_twice_with_pauses_and_hangs_up() {
        assert_eq!(
            say_document(&script("Your Acme code is")),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Pause length=\"1\"/>\
             <Say>Your Acme code is 1, 2, 3, 4, 5, 6.</Say><Pause length=\"1\"/>\
             <Say>Your Acme code is 1, 2, 3, 4, 5, 6.</Say><Hangup/></Response>"
        );
    }

    #[test]
    fn the_plivo_document_uses_speak_and_wait() {
        let doc = speak_document(&script("Your code is"));
        assert_eq!(
            doc.matches("<Speak>Your code is 1, 2, 3, 4, 5, 6.</Speak>")
                .count(),
            2
        );
        assert_eq!(doc.matches("<Wait length=\"1\"/>").count(), 2);
        assert!(doc.ends_with("<Hangup/></Response>"));
    }

    #[test]
    fn other_languages_name_their_voice() {
        let mut script = CallScript::test("Tu código de Acme es {code}.", "123456");
        script.language = Some("es-ES");
        let say = say_document(&script);
        assert_eq!(
            say.matches("<Say language=\"es-ES\">Tu código de Acme es 1, 2, 3, 4, 5, 6.</Say>")
                .count(),
            2,
            "{say}"
        );
        let speak = speak_document(&script);
        assert_eq!(
            speak
                .matches("<Speak language=\"es-ES\">Tu código de Acme es 1, 2, 3, 4, 5, 6.</Speak>")
                .count(),
            2,
            "{speak}"
        );
    }

    #[test]
    fn app_names_are_escaped() {
        let doc = say_document(&script("Your <Tom & Jerry's> code is"));
        assert!(
            doc.contains("Your &#60;Tom &#38; Jerry&#39;s&#62; code is"),
            "{doc}"
        );
    }
}
