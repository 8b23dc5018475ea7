"""Real phones: the phone tree served to a telephony platform as Twilio-style webhooks."""
