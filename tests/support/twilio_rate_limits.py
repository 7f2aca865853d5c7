"""Starts verifications through Twilio's own helper library the way an app passes the
person's address to Twilio's Programmable Rate Limits (rate_limits=...), against
phone-verify's /v2. The 26th start from one address must be refused."""
import sys

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

base, account_sid, auth_token, service_sid, address = sys.argv[1:6]


class PhoneVerify(TwilioHttpClient):
    def request(self, method, url, *args, **kwargs):
        return super().request(method, url.replace("https://verify.twilio.com", base), *args, **kwargs)


service = Client(account_sid, auth_token, http_client=PhoneVerify()).verify.v2.services(service_sid)
limits = {"end_user_ip_address": address}

for i in range(25):
    service.verifications.create(to=f"+1201{200 + i}0123", channel="sms", rate_limits=limits)
print("created 25", flush=True)

try:
    service.verifications.create(to="+12013000123", channel="sms", rate_limits=limits)
    print("not refused", flush=True)
except TwilioRestException as error:
    print("refused", error.status, error.code, flush=True)

other = service.verifications.create(
    to="+12013010123", channel="sms", rate_limits={"end_user_ip_address": "198.51.100.20"}
)
print("another address", other.status, flush=True)
