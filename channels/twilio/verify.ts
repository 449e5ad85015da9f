// Twilio's signature is the host's (`src/twilio.ts`), shared with `twilio_voice`; the names this channel has always
// exported stay.
export {
  verifyTwilioSignature as verifySignature,
  computeTwilioSignature as computeSignature,
  twilioSignedPayload as signedPayload,
  twilioSignatureSettings as signatureSettings,
  twilioUrlVariants as urlVariants,
  type TwilioSignatureAlgorithm as SignatureAlgorithm,
  type TwilioSignedRequest as SignedRequest,
} from 'switchboard';
