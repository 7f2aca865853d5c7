# phone-verify: italiano (tu).

## Ciò che porta il codice

sms = Il tuo codice per { $app_name } è { $code }. Scade tra { $minutes ->
    [one] { $minutes } minuto
   *[other] { $minutes } minuti
}.
call = Il tuo codice per { $app_name } è { $code }.
mfa-message = Il tuo codice per { $app_name } è:

## Ogni pagina

skip-to-content = Vai al contenuto
footer = Il tuo numero viene usato solo per inviarti questo codice.

## Il modulo del numero

phone-title = Verifica il tuo numero di telefono
phone-lead = Ti invieremo un codice monouso per confermare che questo numero è tuo.
phone-label = Numero di telefono
phone-hint = Non è un numero { $region }? Inizia con il prefisso internazionale, ad esempio +44.
channel-legend = Invia il codice tramite
channel-sms = SMS
channel-call = Chiamata
send-code = Invia codice
rates-apply = Potrebbero essere applicati costi per messaggi e dati.
choose-channel = Scegli SMS o chiamata.

## Un accesso richiesto da un’applicazione (OpenID Connect)

sign-in-asks = { $client } ti chiede di verificare il tuo numero di telefono per accedere.
sign-in-asks-anonymous = Un’applicazione ti chiede di verificare il tuo numero di telefono per accedere.
sign-in-cancel = Annulla e torna indietro
sign-in-cancel-to = Annulla e torna a { $client }
sign-in-unreadable = Non è stato possibile leggere la richiesta di accesso.
sign-in-unknown-client = L’applicazione che ti ha mandato qui non è nota a questo servizio.
sign-in-unknown-redirect = L’applicazione ti ha mandato qui con un indirizzo che non ha registrato.
sign-in-expired-title = Questo accesso è scaduto
sign-in-expired = Torna all’applicazione e ricomincia.

## Il modulo del codice

code-title = Inserisci il codice
code-sent = { $channel ->
    [call] Stiamo chiamando il { $number } per darti un codice di { $length } { $kind ->
        [digits] cifre
       *[other] caratteri
    }.
   *[sms] Abbiamo inviato un SMS al { $number } con un codice di { $length } { $kind ->
        [digits] cifre
       *[other] caratteri
    }.
}
code-expires = Scade tra { $minutes ->
    [one] { $minutes } minuto
   *[other] { $minutes } minuti
}.
code-label = Codice di verifica
attempts-left = { $count ->
    [one] Ti resta { $count } tentativo.
   *[other] Ti restano { $count } tentativi.
}
verify = Verifica
didnt-get-it = Non l’hai ricevuto?
resend-sms = Invia un nuovo codice
resend-call = Richiamami
switch-to-sms = Preferisco un SMS
switch-to-call = Preferisco una chiamata
different-number = Usa un altro numero
wrong-code = Il codice non è corretto.
resend-wait = Potrai richiedere un altro codice tra { $wait }.

## Fatto

success-title = Numero di telefono verificato
success-heading = Verifica completata
success-lead = Grazie. { $number } è confermato come tuo numero.
verify-another = Verifica un altro numero

## Un codice che non funziona più

new-code = Inviami un nuovo codice
start-again = Ricomincia
ended-expired-title = Questo codice è scaduto
ended-expired = I codici sono validi solo per poco tempo. Possiamo inviartene uno nuovo.
ended-used-up-title = Troppi codici errati
ended-used-up = Il codice non era corretto e non restano più tentativi. Possiamo inviarti un nuovo codice.
ended-replaced-title = Questo codice è stato sostituito
ended-replaced = Per questo numero è stato richiesto un codice più recente, quindi questo non funziona più. Possiamo inviarti un nuovo codice.
ended-other-title = Questo codice non può più essere usato
ended-other = Possiamo inviarti un nuovo codice.
not-pending = Ricomincia per ricevere un nuovo codice.

## Ciò che la persona ha scritto

phone-empty = Inserisci il tuo numero di telefono.
phone-malformed = Un numero di telefono contiene solo cifre, spazi e i caratteri + ( ) - .
phone-too-short = Il numero è troppo corto.
phone-too-long = Il numero è troppo lungo.
phone-invalid = Questo numero di telefono non è valido. Controllalo e aggiungi il prefisso internazionale (+44…) se non è un numero { $region }.
code-empty = Inserisci il codice che ti abbiamo inviato.
code-wrong-shape = Il codice è di { $length } { $kind ->
    [digits] cifre
   *[other] caratteri (0-9, A-F)
}, senza spazi.

## Rifiuti

too-many-codes-title = Troppi codici
too-many-codes = Sono stati richiesti troppi codici. Riprova tra { $wait }.
locked-title = Troppi codici errati
locked = Per la tua sicurezza, al momento non è possibile verificare codici per questo numero. Riprova tra { $wait }.
country-title = Non possiamo inviare codici in quel paese
country-not-allowed = Non possiamo inviare codici ai numeri di quel paese.
number-title = Questo numero non può ricevere codici
number-rejected = Questo numero non può ricevere codici di verifica. Prova con un altro numero.
fraud-title = Al momento non possiamo inviare un codice a questo numero
fraud-blocked = Al momento non è possibile inviare codici a questo numero. Riprova più tardi o usa un altro numero.
spend-title = Al momento non possiamo inviare codici
spend-limit = Oggi abbiamo già inviato tutti i codici possibili. Riprova tra { $wait }.
delivery-title = Non siamo riusciti a inviare il codice
delivery-failed = Nessuno dei nostri fornitori è riuscito a consegnare il codice. Riprova tra qualche minuto.
check-unavailable-title = Al momento non possiamo verificare i codici
check-unavailable = Il servizio che verifica il tuo codice non ha risposto. Riprova tra un minuto.
unavailable-title = Temporaneamente non disponibile
unavailable = Al momento non possiamo verificare numeri. Riprova tra un minuto.
forbidden-title = Questa pagina è scaduta
forbidden = Per la tua sicurezza, questo modulo può essere inviato solo dalla pagina da cui proviene. Torna all’inizio e riprova.
bad-request-title = Impossibile continuare
not-allowed-title = Non consentito
not-allowed = Questo indirizzo non accetta questo tipo di richiesta.
too-large-title = Troppi dati
too-large = Il modulo ha inviato più dati di quanti ne accettiamo.
too-slow-title = Ci è voluto troppo
too-slow = Il modulo non è arrivato in tempo. Torna indietro e riprova.
unreadable-title = Non siamo riusciti a leggere il modulo
unreadable = Torna indietro e riprova.
not-found-title = Pagina non trovata
not-found = Non c’è niente a questo indirizzo.

## Attese

duration-seconds = { $n ->
    [one] { $n } secondo
   *[other] { $n } secondi
}
duration-minutes = { $n ->
    [one] { $n } minuto
   *[other] { $n } minuti
}
duration-hours = { $n ->
    [one] { $n } ora
   *[other] { $n } ore
}
