# phone-verify: español (neutro, tuteo).

## Lo que lleva el código

sms = Tu código de { $app_name } es { $code }. Es válido durante { $minutes ->
    [one] { $minutes } minuto
   *[other] { $minutes } minutos
}.
call = Tu código de { $app_name } es { $code }.
mfa-message = Tu código de { $app_name } es:

## Todas las páginas

skip-to-content = Saltar al contenido
footer = Tu número solo se usa para enviarte este código.

## El formulario del número

phone-title = Verifica tu número de teléfono
phone-lead = Te enviaremos un código de un solo uso para confirmar que este número es tuyo.
phone-label = Número de teléfono
phone-hint = ¿No es un número de { $region }? Empieza con el código de país, por ejemplo +44.
channel-legend = Enviar el código por
channel-sms = Mensaje de texto
channel-call = Llamada telefónica
send-code = Enviar código
rates-apply = Pueden aplicarse tarifas de mensajes y datos.
choose-channel = Elige mensaje de texto o llamada telefónica.

## Un inicio de sesión de una aplicación (OpenID Connect)

sign-in-asks = { $client } te pide que verifiques tu número de teléfono para iniciar sesión.
sign-in-asks-anonymous = Una aplicación te pide que verifiques tu número de teléfono para iniciar sesión.
sign-in-cancel = Cancelar y volver
sign-in-cancel-to = Cancelar y volver a { $client }
sign-in-unreadable = No se pudo leer la solicitud de inicio de sesión.
sign-in-unknown-client = Este servicio no conoce la aplicación que te envió aquí.
sign-in-unknown-redirect = La aplicación te envió aquí con una dirección que no tiene registrada.
sign-in-expired-title = Este inicio de sesión ha caducado
sign-in-expired = Vuelve a la aplicación y empieza de nuevo.

## El formulario del código

code-title = Escribe tu código
code-sent = { $channel ->
    [call] Te estamos llamando al { $number } con un código de { $length } { $kind ->
        [digits] dígitos
       *[other] caracteres
    }.
   *[sms] Enviamos un SMS al { $number } con un código de { $length } { $kind ->
        [digits] dígitos
       *[other] caracteres
    }.
}
code-expires = Es válido durante { $minutes ->
    [one] { $minutes } minuto
   *[other] { $minutes } minutos
}.
code-label = Código de verificación
attempts-left = { $count ->
    [one] Te queda { $count } intento.
   *[other] Te quedan { $count } intentos.
}
verify = Verificar
didnt-get-it = ¿No te llegó?
resend-sms = Enviar un código nuevo
resend-call = Volver a llamarme
switch-to-sms = Mejor envíame un SMS
switch-to-call = Mejor llámame
different-number = Usar otro número
wrong-code = Ese código no es correcto.
resend-wait = Podrás pedir otro código en { $wait }.

## Listo

success-title = Número de teléfono verificado
success-heading = Verificación completada
success-lead = Gracias. Confirmamos que { $number } es tu número.
verify-another = Verificar otro número

## Un código que ya no sirve

new-code = Enviarme un código nuevo
start-again = Empezar de nuevo
ended-expired-title = Este código ha caducado
ended-expired = Los códigos solo son válidos durante poco tiempo. Podemos enviarte uno nuevo.
ended-used-up-title = Demasiados códigos incorrectos
ended-used-up = Ese código no era correcto y ya no quedan intentos para él. Podemos enviarte un código nuevo.
ended-replaced-title = Este código fue reemplazado
ended-replaced = Se pidió un código más reciente para este número, así que este ya no funciona. Podemos enviarte un código nuevo.
ended-other-title = Este código ya no se puede usar
ended-other = Podemos enviarte un código nuevo.
not-pending = Empieza de nuevo para recibir un código nuevo.

## Lo que escribió la persona

phone-empty = Escribe tu número de teléfono.
phone-malformed = Un número de teléfono solo tiene dígitos, espacios y los caracteres + ( ) - .
phone-too-short = Ese número es demasiado corto.
phone-too-long = Ese número es demasiado largo.
phone-invalid = Ese número de teléfono no es válido. Revísalo e incluye el código de país (+44…) si no es un número de { $region }.
code-empty = Escribe el código que te enviamos.
code-wrong-shape = El código tiene { $length } { $kind ->
    [digits] dígitos
   *[other] caracteres (0-9, A-F)
}, sin espacios.

## Rechazos

too-many-codes-title = Demasiados códigos
too-many-codes = Se han pedido demasiados códigos. Vuelve a intentarlo en { $wait }.
locked-title = Demasiados códigos incorrectos
locked = Por tu seguridad, ahora no se pueden comprobar códigos para este número. Vuelve a intentarlo en { $wait }.
country-title = No podemos enviar códigos a ese país
country-not-allowed = No podemos enviar códigos a números de ese país.
number-title = Este número no puede recibir códigos
number-rejected = Este número no puede recibir códigos de verificación. Prueba con otro número.
fraud-title = Ahora no podemos enviar un código a este número
fraud-blocked = En este momento no se pueden enviar códigos a este número. Vuelve a intentarlo más tarde o usa otro número.
spend-title = Ahora no podemos enviar códigos
spend-limit = Hoy ya enviamos todos los códigos que podemos. Vuelve a intentarlo en { $wait }.
delivery-title = No pudimos enviar tu código
delivery-failed = Ninguno de nuestros proveedores de mensajería pudo entregar el código. Vuelve a intentarlo en unos minutos.
check-unavailable-title = Ahora no podemos comprobar códigos
check-unavailable = El servicio que comprueba tu código no respondió. Vuelve a intentarlo en un minuto.
unavailable-title = No disponible temporalmente
unavailable = Ahora no podemos verificar números. Vuelve a intentarlo en un minuto.
forbidden-title = Esta página ha caducado
forbidden = Por tu seguridad, este formulario solo puede enviarse desde la página de la que proviene. Vuelve al inicio e inténtalo de nuevo.
bad-request-title = No podemos continuar
not-allowed-title = No permitido
not-allowed = Esta dirección no acepta ese tipo de solicitud.
too-large-title = Demasiados datos
too-large = El formulario envió más datos de los que aceptamos.
too-slow-title = Tardó demasiado
too-slow = El formulario no llegó a tiempo. Vuelve atrás e inténtalo de nuevo.
unreadable-title = No pudimos leer ese formulario
unreadable = Vuelve atrás e inténtalo de nuevo.
not-found-title = Página no encontrada
not-found = No hay nada en esta dirección.

## Esperas

duration-seconds = { $n ->
    [one] { $n } segundo
   *[other] { $n } segundos
}
duration-minutes = { $n ->
    [one] { $n } minuto
   *[other] { $n } minutos
}
duration-hours = { $n ->
    [one] { $n } hora
   *[other] { $n } horas
}
