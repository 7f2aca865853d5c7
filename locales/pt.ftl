# phone-verify: português (Brasil, você).

## O que leva o código

sms = Seu código para { $app_name } é { $code }. Ele expira em { $minutes ->
    [one] { $minutes } minuto
   *[other] { $minutes } minutos
}.
call = Seu código para { $app_name } é { $code }.
mfa-message = Seu código para { $app_name } é:

## Todas as páginas

skip-to-content = Pular para o conteúdo
footer = Seu número é usado apenas para enviar este código.

## O formulário do número

phone-title = Confirme seu número de telefone
phone-lead = Vamos enviar um código de uso único para confirmar que este número é seu.
phone-label = Número de telefone
phone-hint = Não é um número de { $region }? Comece com o código do país, como +44.
channel-legend = Enviar o código por
channel-sms = SMS
channel-call = Ligação
send-code = Enviar código
rates-apply = Podem ser cobradas tarifas de mensagens e dados.
choose-channel = Escolha SMS ou ligação.

## Um login pedido por um aplicativo (OpenID Connect)

sign-in-asks = { $client } pede que você confirme seu número de telefone para entrar.
sign-in-asks-anonymous = Um aplicativo pede que você confirme seu número de telefone para entrar.
sign-in-cancel = Cancelar e voltar
sign-in-cancel-to = Cancelar e voltar para { $client }
sign-in-unreadable = Não foi possível ler o pedido de login.
sign-in-unknown-client = O aplicativo que enviou você para cá não é conhecido por este serviço.
sign-in-unknown-redirect = O aplicativo enviou você para cá com um endereço que ele não registrou.
sign-in-expired-title = Este login expirou
sign-in-expired = Volte ao aplicativo e comece de novo.

## O formulário do código

code-title = Digite seu código
code-sent = { $channel ->
    [call] Estamos ligando para { $number } com um código de { $length } { $kind ->
        [digits] dígitos
       *[other] caracteres
    }.
   *[sms] Enviamos um SMS para { $number } com um código de { $length } { $kind ->
        [digits] dígitos
       *[other] caracteres
    }.
}
code-expires = Ele expira em { $minutes ->
    [one] { $minutes } minuto
   *[other] { $minutes } minutos
}.
code-label = Código de verificação
attempts-left = { $count ->
    [one] Resta { $count } tentativa.
   *[other] Restam { $count } tentativas.
}
verify = Confirmar
didnt-get-it = Não recebeu?
resend-sms = Enviar um novo código
resend-call = Ligar de novo
switch-to-sms = Prefiro receber por SMS
switch-to-call = Prefiro receber uma ligação
different-number = Usar outro número
wrong-code = Esse código não está certo.
resend-wait = Você pode pedir outro código em { $wait }.

## Pronto

success-title = Número de telefone confirmado
success-heading = Número confirmado
success-lead = Obrigado. { $number } foi confirmado como seu número.
verify-another = Confirmar outro número

## Um código que não funciona mais

new-code = Enviar um novo código
start-again = Começar de novo
ended-expired-title = Este código expirou
ended-expired = Os códigos valem por pouco tempo. Podemos enviar um novo.
ended-used-up-title = Muitos códigos incorretos
ended-used-up = Esse código não estava certo e não há mais tentativas para ele. Podemos enviar um novo código.
ended-replaced-title = Este código foi substituído
ended-replaced = Um código mais recente foi pedido para este número, então este não funciona mais. Podemos enviar um novo código.
ended-other-title = Este código não pode mais ser usado
ended-other = Podemos enviar um novo código.
not-pending = Comece de novo para receber um novo código.

## O que a pessoa digitou

phone-empty = Digite seu número de telefone.
phone-malformed = Um número de telefone tem apenas dígitos, espaços e os caracteres + ( ) - .
phone-too-short = Esse número é curto demais.
phone-too-long = Esse número é longo demais.
phone-invalid = Esse número de telefone não é válido. Confira e inclua o código do país (+44…) se não for um número de { $region }.
code-empty = Digite o código que enviamos.
code-wrong-shape = O código tem { $length } { $kind ->
    [digits] dígitos
   *[other] caracteres (0-9, A-F)
}, sem espaços.

## Recusas

too-many-codes-title = Códigos demais
too-many-codes = Foram pedidos códigos demais. Tente de novo em { $wait }.
locked-title = Muitos códigos incorretos
locked = Para sua segurança, os códigos deste número não podem ser conferidos agora. Tente de novo em { $wait }.
country-title = Não podemos enviar códigos para lá
country-not-allowed = Não podemos enviar códigos para números desse país.
number-title = Este número não pode receber códigos
number-rejected = Este número não pode receber códigos de verificação. Tente outro número.
fraud-title = Não podemos enviar um código para este número agora
fraud-blocked = No momento, não é possível enviar códigos para este número. Tente de novo mais tarde ou use outro número.
spend-title = Não podemos enviar códigos agora
spend-limit = Já enviamos hoje todos os códigos que podíamos. Tente de novo em { $wait }.
delivery-title = Não conseguimos enviar seu código
delivery-failed = Nenhum dos nossos provedores conseguiu entregar o código agora. Tente de novo em alguns minutos.
check-unavailable-title = Não podemos conferir códigos agora
check-unavailable = O serviço que confere seu código não respondeu. Tente de novo em um minuto.
unavailable-title = Temporariamente indisponível
unavailable = Não podemos confirmar números agora. Tente de novo em um minuto.
forbidden-title = Esta página expirou
forbidden = Para sua segurança, este formulário só pode ser enviado pela página de onde veio. Volte ao início e tente de novo.
bad-request-title = Não podemos continuar
not-allowed-title = Não permitido
not-allowed = Este endereço não aceita esse tipo de pedido.
too-large-title = Dados demais
too-large = O formulário enviou mais dados do que aceitamos.
too-slow-title = Isso demorou demais
too-slow = O formulário não chegou a tempo. Volte e tente de novo.
unreadable-title = Não conseguimos ler esse formulário
unreadable = Volte e tente de novo.
not-found-title = Página não encontrada
not-found = Não há nada neste endereço.

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
