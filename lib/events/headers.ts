/** Headers every relayed event carries (the outbox row's own, x-request-id, travel too). */
export const EVENT_ID_HEADER = "chirp-event-id";
export const USER_ID_HEADER = "chirp-user-id";
export const REQUEST_ID_HEADER = "x-request-id";
