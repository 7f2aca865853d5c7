# phone-verify : français (vouvoiement).

## Ce qui transporte le code

sms = Votre code { $app_name } est { $code }. Il expire dans { $minutes ->
    [one] { $minutes } minute
   *[other] { $minutes } minutes
}.
call = Votre code { $app_name } est { $code }.
mfa-message = Votre code { $app_name } est :

## Toutes les pages

skip-to-content = Aller au contenu
footer = Votre numéro sert uniquement à vous envoyer ce code.

## Le formulaire du numéro

phone-title = Vérifiez votre numéro de téléphone
phone-lead = Nous allons vous envoyer un code à usage unique pour confirmer que ce numéro est bien le vôtre.
phone-label = Numéro de téléphone
phone-hint = Ce n’est pas un numéro { $region } ? Commencez par l’indicatif du pays, par exemple +44.
channel-legend = Recevoir le code par
channel-sms = SMS
channel-call = Appel téléphonique
send-code = Envoyer le code
rates-apply = Des frais de messagerie et de données peuvent s’appliquer.
choose-channel = Choisissez SMS ou appel téléphonique.

## Une connexion demandée par une application (OpenID Connect)

sign-in-asks = { $client } vous demande de vérifier votre numéro de téléphone pour vous connecter.
sign-in-asks-anonymous = Une application vous demande de vérifier votre numéro de téléphone pour vous connecter.
sign-in-cancel = Annuler et revenir
sign-in-cancel-to = Annuler et revenir à { $client }
sign-in-unreadable = La demande de connexion n’a pas pu être lue.
sign-in-unknown-client = L’application qui vous a envoyé ici n’est pas connue de ce service.
sign-in-unknown-redirect = L’application vous a envoyé ici avec une adresse qu’elle n’a pas enregistrée.
sign-in-expired-title = Cette connexion a expiré
sign-in-expired = Revenez à l’application et recommencez.

## Le formulaire du code

code-title = Saisissez votre code
code-sent = { $channel ->
    [call] Nous appelons le { $number } pour vous donner un code de { $length } { $kind ->
        [digits] chiffres
       *[other] caractères
    }.
   *[sms] Nous avons envoyé un code de { $length } { $kind ->
        [digits] chiffres
       *[other] caractères
    } par SMS au { $number }.
}
code-expires = Il expire dans { $minutes ->
    [one] { $minutes } minute
   *[other] { $minutes } minutes
}.
code-label = Code de vérification
attempts-left = { $count ->
    [one] Il vous reste { $count } essai.
   *[other] Il vous reste { $count } essais.
}
verify = Vérifier
didnt-get-it = Vous ne l’avez pas reçu ?
resend-sms = Envoyer un nouveau code
resend-call = Me rappeler
switch-to-sms = Plutôt par SMS
switch-to-call = Plutôt par appel
different-number = Utiliser un autre numéro
wrong-code = Ce code n’est pas correct.
resend-wait = Vous pourrez demander un autre code dans { $wait }.

## Terminé

success-title = Numéro de téléphone vérifié
success-heading = Vérification réussie
success-lead = Merci. { $number } est confirmé comme étant votre numéro.
verify-another = Vérifier un autre numéro

## Un code qui ne fonctionne plus

new-code = M’envoyer un nouveau code
start-again = Recommencer
ended-expired-title = Ce code a expiré
ended-expired = Les codes ne sont valables que peu de temps. Nous pouvons vous en envoyer un nouveau.
ended-used-up-title = Trop de codes incorrects
ended-used-up = Ce code n’était pas correct et il ne reste plus d’essais pour lui. Nous pouvons vous envoyer un nouveau code.
ended-replaced-title = Ce code a été remplacé
ended-replaced = Un code plus récent a été demandé pour ce numéro, celui-ci ne fonctionne donc plus. Nous pouvons vous envoyer un nouveau code.
ended-other-title = Ce code ne peut plus être utilisé
ended-other = Nous pouvons vous envoyer un nouveau code.
not-pending = Recommencez pour recevoir un nouveau code.

## Ce que la personne a saisi

phone-empty = Saisissez votre numéro de téléphone.
phone-malformed = Un numéro de téléphone ne contient que des chiffres, des espaces et les caractères + ( ) - .
phone-too-short = Ce numéro est trop court.
phone-too-long = Ce numéro est trop long.
phone-invalid = Ce numéro de téléphone n’est pas valide. Vérifiez-le et ajoutez l’indicatif du pays (+44…) s’il ne s’agit pas d’un numéro { $region }.
code-empty = Saisissez le code que nous vous avons envoyé.
code-wrong-shape = Le code comporte { $length } { $kind ->
    [digits] chiffres
   *[other] caractères (0-9, A-F)
}, sans espaces.

## Refus

too-many-codes-title = Trop de codes
too-many-codes = Trop de codes ont été demandés. Réessayez dans { $wait }.
locked-title = Trop de codes incorrects
locked = Pour votre sécurité, les codes de ce numéro ne peuvent pas être vérifiés pour le moment. Réessayez dans { $wait }.
country-title = Nous ne pouvons pas envoyer de codes dans ce pays
country-not-allowed = Nous ne pouvons pas envoyer de codes aux numéros de ce pays.
number-title = Ce numéro ne peut pas recevoir de codes
number-rejected = Ce numéro ne peut pas recevoir de codes de vérification. Essayez un autre numéro.
fraud-title = Nous ne pouvons pas envoyer de code à ce numéro pour le moment
fraud-blocked = Aucun code ne peut être envoyé à ce numéro pour le moment. Réessayez plus tard ou utilisez un autre numéro.
spend-title = Nous ne pouvons pas envoyer de codes pour le moment
spend-limit = Nous avons envoyé aujourd’hui autant de codes que possible. Réessayez dans { $wait }.
delivery-title = Nous n’avons pas pu envoyer votre code
delivery-failed = Aucun de nos fournisseurs n’a pu livrer le code pour l’instant. Réessayez dans quelques minutes.
check-unavailable-title = Nous ne pouvons pas vérifier les codes pour le moment
check-unavailable = Le service qui vérifie votre code n’a pas répondu. Réessayez dans une minute.
unavailable-title = Service momentanément indisponible
unavailable = Nous ne pouvons pas vérifier de numéros pour le moment. Réessayez dans une minute.
forbidden-title = Cette page a expiré
forbidden = Pour votre sécurité, ce formulaire ne peut être envoyé que depuis la page d’où il provient. Revenez au début et réessayez.
bad-request-title = Impossible de continuer
not-allowed-title = Non autorisé
not-allowed = Cette adresse n’accepte pas ce type de requête.
too-large-title = Trop de données
too-large = Le formulaire a envoyé plus de données que nous n’en acceptons.
too-slow-title = C’était trop long
too-slow = Le formulaire n’est pas arrivé à temps. Revenez en arrière et réessayez.
unreadable-title = Nous n’avons pas pu lire ce formulaire
unreadable = Revenez en arrière et réessayez.
not-found-title = Page introuvable
not-found = Il n’y a rien à cette adresse.

## Délais

duration-seconds = { $n ->
    [one] { $n } seconde
   *[other] { $n } secondes
}
duration-minutes = { $n ->
    [one] { $n } minute
   *[other] { $n } minutes
}
duration-hours = { $n ->
    [one] { $n } heure
   *[other] { $n } heures
}
