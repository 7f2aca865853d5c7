# phone-verify: English. Every other catalog has exactly these messages (a test checks).
# Placeables: $app_name, $code, $minutes, $number, $client, $region, $count, $length,
# $kind (digits | characters), $channel (sms | call), $wait (a duration, already worded),
# $n (a count of seconds, minutes or hours).

## What a code travels in. `sms` gets the `@HOST #CODE` line after it; in `call`,
## $code is read out digit by digit, and the whole sentence is said twice.

sms = Your { $app_name } code is { $code }. It expires in { $minutes ->
    [one] { $minutes } minute
   *[other] { $minutes } minutes
}.
call = Your { $app_name } code is { $code }.
# SignalWire MFA writes the SMS and call itself: this comes before its code.
mfa-message = Your { $app_name } code is:

## Every page

skip-to-content = Skip to content
footer = Your number is used only to send this code.

## The phone form

phone-title = Verify your phone number
phone-lead = We’ll send you a one-time code to confirm this number is yours.
phone-label = Phone number
phone-hint = Not a { $region } number? Start with its country code, like +44.
channel-legend = Send the code by
channel-sms = Text message
channel-call = Phone call
send-code = Send code
rates-apply = Message and data rates may apply.
choose-channel = Choose text message or phone call.

## A sign-in run by an application (OpenID Connect)

sign-in-asks = { $client } asks you to verify your phone number to sign in.
sign-in-asks-anonymous = An application asks you to verify your phone number to sign in.
sign-in-cancel = Cancel and go back
sign-in-cancel-to = Cancel and go back to { $client }
sign-in-unreadable = The sign-in request could not be read.
sign-in-unknown-client = The application that sent you here is not known to this service.
sign-in-unknown-redirect = The application sent you here with an address it has not registered.
sign-in-expired-title = This sign-in has expired
sign-in-expired = Go back to the application and start again.

## The code form

code-title = Enter your code
code-sent = { $channel ->
    [call] We are calling { $number } with a { $length }-{ $kind ->
        [digits] digit
       *[other] character
    } code.
   *[sms] We texted { $number } with a { $length }-{ $kind ->
        [digits] digit
       *[other] character
    } code.
}
code-expires = It expires in { $minutes ->
    [one] { $minutes } minute
   *[other] { $minutes } minutes
}.
code-label = Verification code
attempts-left = { $count ->
    [one] { $count } attempt left.
   *[other] { $count } attempts left.
}
verify = Verify
didnt-get-it = Didn’t get it?
resend-sms = Send a new code
resend-call = Call me again
switch-to-sms = Text me instead
switch-to-call = Call me instead
different-number = Use a different number
wrong-code = That code isn’t right.
resend-wait = You can ask for another code in { $wait }.

## Done

success-title = Phone number verified
success-heading = You’re verified
success-lead = Thanks. { $number } is confirmed as your number.
verify-another = Verify another number

## A code that no longer works

new-code = Send me a new code
start-again = Start again
ended-expired-title = This code has expired
ended-expired = Codes are valid for a short time only. We can send you a new one.
ended-used-up-title = Too many incorrect codes
ended-used-up = That code was not right, and there are no attempts left for it. We can send you a new code.
ended-replaced-title = This code was replaced
ended-replaced = A newer code was requested for this number, so this one no longer works. We can send you a new code.
ended-other-title = This code can no longer be used
ended-other = We can send you a new code.
not-pending = Start again to get a new code.

## What the person typed

phone-empty = Enter your phone number.
phone-malformed = A phone number has only digits, spaces, and + ( ) - . characters.
phone-too-short = That number is too short.
phone-too-long = That number is too long.
phone-invalid = That is not a valid phone number. Check it, and include the country code (+44…) if it is not a { $region } number.
code-empty = Enter the code we sent you.
code-wrong-shape = The code is { $length } { $kind ->
    [digits] digits
   *[other] characters (0-9, A-F)
}, with no spaces.

## Refusals

too-many-codes-title = Too many codes
too-many-codes = Too many codes have been requested. Try again in { $wait }.
locked-title = Too many incorrect codes
locked = For your security, codes for this number can’t be checked right now. Try again in { $wait }.
country-title = We can’t send codes there
country-not-allowed = We can’t send codes to numbers in that country.
number-title = This number can’t get codes
number-rejected = This number can’t receive verification codes. Try another number.
fraud-title = We can’t send a code to this number now
fraud-blocked = Codes can’t be sent to this number at the moment. Please try again later, or use another number.
spend-title = We can’t send codes right now
spend-limit = We’ve sent as many codes as we can today. Please try again in { $wait }.
delivery-title = We couldn’t send your code
delivery-failed = None of our messaging providers could deliver the code just now. Please try again in a few minutes.
check-unavailable-title = We can’t check codes right now
check-unavailable = The service that checks your code did not answer. Please try again in a minute.
unavailable-title = Temporarily unavailable
unavailable = We can’t verify numbers right now. Please try again in a minute.
forbidden-title = This page has expired
forbidden = For your security, this form can only be sent from the page it came from. Go back to the start and try again.
bad-request-title = We can’t continue
not-allowed-title = Not allowed
not-allowed = This address does not accept that kind of request.
too-large-title = That was too much
too-large = The form sent more data than we accept.
too-slow-title = That took too long
too-slow = The form did not arrive in time. Please go back and try again.
unreadable-title = We couldn’t read that form
unreadable = Please go back and try again.
not-found-title = Page not found
not-found = There is nothing at this address.

## Waits

duration-seconds = { $n ->
    [one] { $n } second
   *[other] { $n } seconds
}
duration-minutes = { $n ->
    [one] { $n } minute
   *[other] { $n } minutes
}
duration-hours = { $n ->
    [one] { $n } hour
   *[other] { $n } hours
}
