# phone-verify: Deutsch (Sie).

## Womit der Code reist

sms = Ihr Code für { $app_name } lautet { $code }. Er ist { $minutes ->
    [one] { $minutes } Minute
   *[other] { $minutes } Minuten
} gültig.
call = Ihr Code für { $app_name } lautet { $code }.
mfa-message = Ihr Code für { $app_name } lautet:

## Jede Seite

skip-to-content = Zum Inhalt springen
footer = Ihre Nummer wird nur verwendet, um Ihnen diesen Code zu senden.

## Das Formular für die Nummer

phone-title = Telefonnummer bestätigen
phone-lead = Wir senden Ihnen einen Einmalcode, um zu bestätigen, dass diese Nummer Ihnen gehört.
phone-label = Telefonnummer
phone-hint = Keine Nummer aus { $region }? Beginnen Sie mit der Ländervorwahl, z. B. +44.
channel-legend = Code senden per
channel-sms = SMS
channel-call = Anruf
send-code = Code senden
rates-apply = Es können Kosten für SMS und Daten anfallen.
choose-channel = Wählen Sie SMS oder Anruf.

## Eine Anmeldung für eine Anwendung (OpenID Connect)

sign-in-asks = { $client } bittet Sie, Ihre Telefonnummer zu bestätigen, um sich anzumelden.
sign-in-asks-anonymous = Eine Anwendung bittet Sie, Ihre Telefonnummer zu bestätigen, um sich anzumelden.
sign-in-cancel = Abbrechen und zurück
sign-in-cancel-to = Abbrechen und zurück zu { $client }
sign-in-unreadable = Die Anmeldeanfrage konnte nicht gelesen werden.
sign-in-unknown-client = Die Anwendung, die Sie hierher geschickt hat, ist diesem Dienst nicht bekannt.
sign-in-unknown-redirect = Die Anwendung hat Sie mit einer Adresse hierher geschickt, die sie nicht registriert hat.
sign-in-expired-title = Diese Anmeldung ist abgelaufen
sign-in-expired = Kehren Sie zur Anwendung zurück und beginnen Sie erneut.

## Das Formular für den Code

code-title = Code eingeben
code-sent = { $channel ->
    [call] Wir rufen { $number } an und nennen Ihnen einen { $length }-stelligen Code.
   *[sms] Wir haben einen { $length }-stelligen Code per SMS an { $number } gesendet.
}
code-expires = Er ist { $minutes ->
    [one] { $minutes } Minute
   *[other] { $minutes } Minuten
} gültig.
code-label = Bestätigungscode
attempts-left = { $count ->
    [one] Noch { $count } Versuch.
   *[other] Noch { $count } Versuche.
}
verify = Bestätigen
didnt-get-it = Keinen Code erhalten?
resend-sms = Neuen Code senden
resend-call = Erneut anrufen
switch-to-sms = Lieber per SMS
switch-to-call = Lieber per Anruf
different-number = Andere Nummer verwenden
wrong-code = Dieser Code ist nicht richtig.
resend-wait = Sie können in { $wait } einen neuen Code anfordern.

## Fertig

success-title = Telefonnummer bestätigt
success-heading = Bestätigt
success-lead = Danke. { $number } ist als Ihre Nummer bestätigt.
verify-another = Andere Nummer bestätigen

## Ein Code, der nicht mehr gilt

new-code = Neuen Code senden
start-again = Neu beginnen
ended-expired-title = Dieser Code ist abgelaufen
ended-expired = Codes sind nur kurze Zeit gültig. Wir können Ihnen einen neuen senden.
ended-used-up-title = Zu viele falsche Codes
ended-used-up = Dieser Code war nicht richtig, und für ihn sind keine Versuche mehr übrig. Wir können Ihnen einen neuen Code senden.
ended-replaced-title = Dieser Code wurde ersetzt
ended-replaced = Für diese Nummer wurde ein neuerer Code angefordert, daher funktioniert dieser nicht mehr. Wir können Ihnen einen neuen Code senden.
ended-other-title = Dieser Code kann nicht mehr verwendet werden
ended-other = Wir können Ihnen einen neuen Code senden.
not-pending = Beginnen Sie neu, um einen neuen Code zu erhalten.

## Was eingegeben wurde

phone-empty = Geben Sie Ihre Telefonnummer ein.
phone-malformed = Eine Telefonnummer enthält nur Ziffern, Leerzeichen und die Zeichen + ( ) - .
phone-too-short = Diese Nummer ist zu kurz.
phone-too-long = Diese Nummer ist zu lang.
phone-invalid = Das ist keine gültige Telefonnummer. Prüfen Sie sie und geben Sie die Ländervorwahl (+44…) an, wenn es keine Nummer aus { $region } ist.
code-empty = Geben Sie den Code ein, den wir Ihnen gesendet haben.
code-wrong-shape = Der Code besteht aus { $length } { $kind ->
    [digits] Ziffern
   *[other] Zeichen (0-9, A-F)
}, ohne Leerzeichen.

## Ablehnungen

too-many-codes-title = Zu viele Codes
too-many-codes = Es wurden zu viele Codes angefordert. Versuchen Sie es in { $wait } erneut.
locked-title = Zu viele falsche Codes
locked = Zu Ihrer Sicherheit können für diese Nummer gerade keine Codes geprüft werden. Versuchen Sie es in { $wait } erneut.
country-title = Dorthin können wir keine Codes senden
country-not-allowed = An Nummern in diesem Land können wir keine Codes senden.
number-title = Diese Nummer kann keine Codes empfangen
number-rejected = Diese Nummer kann keine Bestätigungscodes empfangen. Versuchen Sie es mit einer anderen Nummer.
fraud-title = Wir können gerade keinen Code an diese Nummer senden
fraud-blocked = An diese Nummer können im Moment keine Codes gesendet werden. Versuchen Sie es später erneut oder verwenden Sie eine andere Nummer.
spend-title = Wir können gerade keine Codes senden
spend-limit = Wir haben heute so viele Codes gesendet, wie wir können. Versuchen Sie es in { $wait } erneut.
delivery-title = Wir konnten Ihren Code nicht senden
delivery-failed = Keiner unserer Anbieter konnte den Code gerade zustellen. Versuchen Sie es in ein paar Minuten erneut.
check-unavailable-title = Wir können gerade keine Codes prüfen
check-unavailable = Der Dienst, der Ihren Code prüft, hat nicht geantwortet. Versuchen Sie es in einer Minute erneut.
unavailable-title = Vorübergehend nicht verfügbar
unavailable = Wir können gerade keine Nummern bestätigen. Versuchen Sie es in einer Minute erneut.
forbidden-title = Diese Seite ist abgelaufen
forbidden = Zu Ihrer Sicherheit kann dieses Formular nur von der Seite gesendet werden, von der es stammt. Gehen Sie zurück zum Anfang und versuchen Sie es erneut.
bad-request-title = Wir können nicht fortfahren
not-allowed-title = Nicht erlaubt
not-allowed = Diese Adresse nimmt diese Art von Anfrage nicht an.
too-large-title = Das war zu viel
too-large = Das Formular hat mehr Daten gesendet, als wir annehmen.
too-slow-title = Das hat zu lange gedauert
too-slow = Das Formular ist nicht rechtzeitig angekommen. Gehen Sie zurück und versuchen Sie es erneut.
unreadable-title = Wir konnten das Formular nicht lesen
unreadable = Gehen Sie zurück und versuchen Sie es erneut.
not-found-title = Seite nicht gefunden
not-found = Unter dieser Adresse gibt es nichts.

## Wartezeiten

duration-seconds = { $n ->
    [one] { $n } Sekunde
   *[other] { $n } Sekunden
}
duration-minutes = { $n ->
    [one] { $n } Minute
   *[other] { $n } Minuten
}
duration-hours = { $n ->
    [one] { $n } Stunde
   *[other] { $n } Stunden
}
