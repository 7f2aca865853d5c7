"""Drives phone-verify with Twilio's own helper library, as an app written for
Twilio Verify would, with only the base URL changed (through the library's
HTTP-client hook). Reads the code from standard input after starting."""
import sys

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

base, account_sid, auth_token, service_sid, to = sys.argv[1:6]


class PhoneVerify(TwilioHttpClient):
    def request(self, method, url, *args, **kwargs):
        return super().request(method, url.replace("https://verify.twilio.com", base), *args, **kwargs)


client = Client(account_sid, auth_token, http_client=PhoneVerify())
service = client.verify.v2.services(service_sid)

verification = service.verifications.create(to=to, channel="sms")
print("created", verification.sid, verification.status, verification.channel, flush=True)

code = sys.stdin.readline().strip()
wrong = "000000" if code != "000000" else "111111"
check = service.verification_checks.create(to=to, code=wrong)
print("wrong", check.status, check.valid, flush=True)
check = service.verification_checks.create(verification_sid=verification.sid, code=code)
print("checked", check.status, check.valid, flush=True)
print("fetched", service.verifications(verification.sid).fetch().status, flush=True)

try:
    client.verify.v2.services("VA" + "0" * 32).verifications.create(to=to, channel="sms")
except TwilioRestException as error:
    print("error", error.status, error.code, flush=True)
