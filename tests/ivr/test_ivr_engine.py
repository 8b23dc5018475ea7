"""The engine over every branch of the default flow, and the parts other flows use."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ivr.engine import (
    PIN_MASK,
    Awaiting,
    CallerHangup,
    Effect,
    Engine,
    EngineError,
    Event,
    Handoff,
    Hangup,
    Keys,
    Phase,
    QueueStatus,
    RecordStep,
    RequestCallback,
    Speech,
    State,
    SubmitSurvey,
    Verified,
    Verify,
)
from ivr.flow import load_flow
from ivr.simulator import random_answer, random_persona

ENGINE = Engine(load_flow())
WELCOME = "Welcome to Acme Bank. For English, press 1. Para español, oprima 2."
ACCOUNT_EN = "Please enter your 8-digit account number, followed by the hash key."
PIN_EN = "Please enter your PIN, followed by the hash key."
RETRY_EN = "Sorry, those details do not match our records. Let's try again."
MENU_EN = ENGINE.flow.text(ENGINE.flow.nodes["main"].prompt, "en")  # type: ignore[union-attr]
MENU_ES = ENGINE.flow.text(ENGINE.flow.nodes["main"].prompt, "es")  # type: ignore[union-attr]
INVALID_EN = "Sorry, that is not one of the choices."
ENTRY_INVALID_EN = "Sorry, that does not look like the number I asked for. Please use the keypad."
TRANSFER_EN = "Please hold while I connect you with someone who can help."
VERIFIED_EN = "Thank you, you are verified."
OK = Verified(verified=True, attempts_left=3)


class Call:
    """An engine run that keeps every prompt and effect, as a driver would see them."""

    def __init__(self, engine: Engine = ENGINE) -> None:
        self.engine = engine
        turn = engine.start()
        self.state: State = turn.state
        self.prompts: list[str] = list(turn.prompts)
        self.effects: list[Effect] = list(turn.effects)

    def __call__(self, *events: Event) -> Call:
        for event in events:
            turn = self.engine.advance(self.state, event)
            self.state = turn.state
            self.prompts.extend(turn.prompts)
            self.effects.extend(turn.effects)
        return self

    @property
    def last_prompt(self) -> str:
        return self.prompts[-1]

    @property
    def steps(self) -> list[RecordStep]:
        return [e for e in self.effects if isinstance(e, RecordStep)]

    @property
    def handoff(self) -> Handoff:
        handoffs = [e for e in self.effects if isinstance(e, Handoff)]
        assert len(handoffs) == 1, self.effects
        assert self.effects[-1] == handoffs[0]  # nothing happens after a handoff
        return handoffs[0]


def k(keys: str) -> Keys:
    return Keys(keys)


def verified_en() -> Call:
    call = Call()(k("1"), k("12345678#"), k("1234#"))
    assert call.state.awaiting is Awaiting.VERIFICATION
    return call(OK)


def test_the_call_opens_with_the_language_question() -> None:
    call = Call()
    assert call.prompts == [WELCOME]
    assert call.effects == []
    assert call.state.phase is Phase.TREE
    assert call.state.awaiting is Awaiting.INPUT
    assert call.state.node == "language"


@pytest.mark.parametrize(
    ("key", "language", "account_prompt"),
    [
        ("1", "en", ACCOUNT_EN),
        (
            "2",
            "es",
            "Por favor, marque su número de cuenta de 8 dígitos, seguido de la tecla numeral.",
        ),
    ],
)
def test_language_choice(key: str, language: str, account_prompt: str) -> None:
    call = Call()(k(key))
    assert call.state.language == language
    assert call.last_prompt == account_prompt
    assert call.steps == [RecordStep("language", WELCOME, key)]
    assert call.state.node == "identify"
    assert call.state.stage == "account"


def test_the_verified_english_caller_with_a_lost_card() -> None:
    """The contract's example: --keys '1,12345678#,1234#,2'."""
    call = Call()(k("1"), k("12345678#"))
    assert call.last_prompt == PIN_EN
    assert call.state.secret
    call(k("1234#"))
    assert call.effects[-1] == Verify(account_number="12345678", pin="1234")
    assert call.state.phase is Phase.VERIFYING
    call(OK)
    assert call.prompts[-2:] == [VERIFIED_EN, MENU_EN]
    assert call.state.verified
    call(k("2"))
    assert call.handoff == Handoff(
        intent="card_lost", collected={}, utterance=None, escalate_reason=None
    )
    assert call.last_prompt == TRANSFER_EN
    assert call.state.phase is Phase.QUEUED
    assert call.state.awaiting is Awaiting.CENTRE
    assert call.steps == [
        RecordStep("language", WELCOME, "1"),
        RecordStep("identify.account", ACCOUNT_EN, "12345678#"),
        RecordStep("identify.pin", PIN_EN, PIN_MASK),
        RecordStep("main", MENU_EN, "2"),
    ]


def test_a_spanish_caller_hears_spanish_to_the_end() -> None:
    call = Call()(k("2"), k("12345678#"), k("1234#"), OK, k("3"))
    assert call.prompts[-3:] == [
        "Gracias, su identidad está verificada.",
        MENU_ES,
        "Por favor, espere mientras le comunico con alguien que pueda ayudarle.",
    ]
    assert call.handoff.intent == "loans"


@pytest.mark.parametrize(
    ("key", "intent", "reason", "queue"),
    [
        ("1", "billing", None, "billing"),
        ("2", "card_lost", None, "cards"),
        ("3", "loans", None, "loans"),
        ("0", None, "caller_requested", None),
        ("1#", "billing", None, "billing"),  # a caller who ends everything with the hash key
    ],
)
def test_main_menu_keys_hand_off_at_once(
    key: str, intent: str | None, reason: str | None, queue: str | None
) -> None:
    call = verified_en()(k(key))
    assert call.handoff == Handoff(
        intent=intent, collected={}, utterance=None, escalate_reason=reason
    )
    assert call.steps[-1] == RecordStep("main", MENU_EN, key)
    assert ENGINE.flow.queue_for(call.handoff.intent) == queue


@pytest.mark.parametrize(
    ("words", "intent", "reason"),
    [
        ("I think my card was stolen", "card_lost", None),
        ("what's my balance please", "billing", None),
        ("I'd like to talk about a mortgage", "loans", None),
        ("quiero pagar mi factura", "billing", None),
        ("my husband died and I need to close his account", None, "unscripted"),
        ("I lost my card and I also need a loan", None, "unscripted"),
    ],
)
def test_spoken_answers_hand_off_with_the_words(
    words: str, intent: str | None, reason: str | None
) -> None:
    call = verified_en()(Speech(f"  {words} "))
    assert call.handoff == Handoff(
        intent=intent, collected={}, utterance=words, escalate_reason=reason
    )
    assert call.steps[-1] == RecordStep("main", MENU_EN, words)


def test_two_invalid_keys_in_a_row_go_to_a_person() -> None:
    call = verified_en()(k("7"))
    assert call.prompts[-2:] == [INVALID_EN, MENU_EN]
    assert call.state.invalid == 1
    call(k("*"))
    assert call.handoff == Handoff(
        intent=None, collected={}, utterance=None, escalate_reason="no_match"
    )
    assert [s.input for s in call.steps[-2:]] == ["7", "*"]


def test_silence_counts_as_an_invalid_answer() -> None:
    call = verified_en()(k(""), k(""))
    assert call.handoff.escalate_reason == "no_match"
    assert call.steps[-1].input == "(no input)"


def test_an_invalid_key_then_a_valid_one() -> None:
    call = verified_en()(k("9"), k("1"))
    assert call.handoff.intent == "billing"


def test_invalid_answers_are_counted_per_question() -> None:
    # One wrong key at the language menu and one at the main menu are not two in a row.
    call = Call()(k("5"))
    assert call.prompts[-2:] == [INVALID_EN, WELCOME]
    call(k("1"), k("12345678#"), k("1234#"), OK, k("8"))
    assert call.state.phase is Phase.TREE
    assert call.last_prompt == MENU_EN


def test_the_language_menu_does_not_listen_to_words() -> None:
    call = Call()(Speech("English please"))
    assert call.prompts[-2:] == [INVALID_EN, WELCOME]
    call(k("3"))
    assert call.handoff.escalate_reason == "no_match"


def test_three_wrong_pairs_go_to_escalations() -> None:
    call = Call()(k("1"))
    for left in (2, 1):
        call(k("11111111#"), k("0000#"), Verified(False, left))
        assert call.prompts[-2:] == [RETRY_EN, ACCOUNT_EN]
        assert call.state.stage == "account"
    call(k("11111111#"), k("0000#"), Verified(False, 0))
    assert call.handoff == Handoff(
        intent=None, collected={}, utterance=None, escalate_reason="verification_failed"
    )
    assert sum(isinstance(e, Verify) for e in call.effects) == 3
    assert not call.state.verified


def test_a_wrong_pair_then_the_right_one() -> None:
    call = Call()(k("1"), k("11111111#"), k("0000#"), Verified(False, 2))
    call(k("12345678#"), k("1234#"), OK, k("1"))
    assert call.state.verified
    assert call.handoff.intent == "billing"


def test_a_locked_account_ends_verification_at_once() -> None:
    call = Call()(k("1"), k("12345678#"), k("1234#"), Verified(False, 0, locked=True))
    assert call.handoff.escalate_reason == "verification_failed"
    call = Call()(k("1"), k("12345678#"), k("1234#"), Verified(False, 2, locked=True))
    assert call.handoff.escalate_reason == "verification_failed"


def test_the_backends_count_of_tries_wins_when_stricter() -> None:
    # The account had failures on an earlier call: the backend says no tries are left.
    call = Call()(k("1"), k("12345678#"), k("0000#"), Verified(False, 0))
    assert call.handoff.escalate_reason == "verification_failed"


def test_an_entry_that_cannot_be_a_number_is_asked_again_without_using_a_try() -> None:
    call = Call()(k("1"), k("1234#"))  # 4 digits for an 8-digit account
    assert call.prompts[-2:] == [ENTRY_INVALID_EN, ACCOUNT_EN]
    call(Speech("my account is the one ending in 42"))  # words at the account prompt
    assert call.prompts[-2:] == [ENTRY_INVALID_EN, ACCOUNT_EN]
    call(k("12345678#"), k("12#"))  # a PIN too short: the PIN is asked again, not the account
    assert call.prompts[-2:] == [ENTRY_INVALID_EN, PIN_EN]
    # None of those was a try: three wrong pairs still follow before giving up.
    call(k("0000#"), Verified(False, 2), k("12345678#"), k("0000#"), Verified(False, 1))
    assert call.prompts[-2:] == [RETRY_EN, ACCOUNT_EN]
    call(k("12345678#"), k("1234#"), OK)
    assert call.state.verified
    assert not any(isinstance(e, Verify) and e.pin == "12" for e in call.effects)


def test_three_unusable_entries_in_a_row_end_verification_without_asking_the_backend() -> None:
    call = Call()(k("1"), k("1#"), Speech("hello"), k(""))
    assert call.handoff.escalate_reason == "verification_failed"
    assert not any(isinstance(e, Verify) for e in call.effects)


@pytest.mark.parametrize(
    "events",
    [
        [k("0")],  # the language question, whose keys are 1 and 2
        [k("1"), k("0#")],  # the account number
        [k("1"), k("12345678#"), k("0")],  # the PIN
        [k("1"), k("12345678#"), k("1234#"), OK, k("0")],  # the main menu's own 0
    ],
    ids=["language", "account", "pin", "main-menu"],
)
def test_0_reaches_a_person_at_every_prompt(events: list[Event]) -> None:
    call = Call()(*events)
    assert call.handoff.escalate_reason == "caller_requested"
    assert call.last_prompt == TRANSFER_EN
    assert call.steps[-1].input in ("0", "0#", PIN_MASK)  # at the PIN prompt, masked as ever


def test_the_terminator_is_optional() -> None:
    call = Call()(k("1"), k("12345678"), k("123456"))
    assert call.effects[-1] == Verify(account_number="12345678", pin="123456")


def test_a_pin_is_never_recorded() -> None:
    call = Call()(k("1"))
    for pin in ("9876#", "98#", "987654#"):
        call(k("12345678#"), k(pin))
        if call.state.phase is Phase.VERIFYING:
            call(Verified(False, 1))
    # "98#" is asked again at the PIN prompt, where the next account number is typed too.
    pin_steps = [s for s in call.steps if s.node == "identify.pin"]
    assert len(pin_steps) == 4
    assert {s.input for s in pin_steps} == {PIN_MASK}
    assert not any("987" in s.input for s in call.steps)


@pytest.mark.parametrize(
    "events",
    [
        [],
        [k("1")],
        [k("1"), k("12345678#")],
        [k("1"), k("12345678#"), k("1234#")],  # waiting for the backend
        [k("1"), k("12345678#"), k("1234#"), OK],
    ],
)
def test_hanging_up_anywhere_in_the_tree(events: list[Event]) -> None:
    call = Call()(*events)
    steps = len(call.steps)
    call(CallerHangup())
    assert call.effects[-1] == Hangup()
    assert len(call.steps) == steps  # a hang-up is not an answer
    assert call.state.phase is Phase.DONE
    assert call.state.awaiting is Awaiting.NOTHING
    with pytest.raises(EngineError):
        call(CallerHangup())


def test_events_out_of_turn_are_refused() -> None:
    with pytest.raises(EngineError):
        Call()(OK)
    with pytest.raises(EngineError):
        Call()(k("1"), k("12345678#"), k("1234#"), k("1"))
    with pytest.raises(EngineError):
        Call()(QueueStatus("queued", 1, 0))


def test_long_speech_is_cut() -> None:
    call = verified_en()(Speech("word " * 400))
    assert len(call.handoff.utterance or "") <= 500
    assert len(call.steps[-1].input) <= 500


# After the handoff: the queue, the agent, the survey.


def queued() -> Call:
    return verified_en()(k("2"))


def test_the_queue_position_is_told_when_it_changes() -> None:
    call = queued()(QueueStatus("queued", 3, 0.4))
    assert call.last_prompt == "You are number 3 in line. You have waited 0 seconds."
    told = len(call.prompts)
    call(QueueStatus("queued", 3, 5.0))
    assert len(call.prompts) == told  # nothing new to say
    call(QueueStatus("queued", 2, 12.0))
    assert call.last_prompt == "You are number 2 in line. You have waited 12 seconds."
    call(QueueStatus("offered", 2, 31.0))  # still waiting, 30 s more: a reminder
    assert call.last_prompt == "You are number 2 in line. You have waited 31 seconds."
    call(QueueStatus("queued", None, None))
    assert call.last_prompt.endswith("31 seconds.")
    assert call.state.phase is Phase.QUEUED


def test_a_waiting_caller_takes_the_callback_offer_without_hanging_up() -> None:
    call = queued()(k("1"))  # before any offer, keys on hold do nothing
    assert call.state.phase is Phase.QUEUED and RequestCallback() not in call.effects
    call(QueueStatus("offered", 1, 130.0, callback_offer=True))  # an agent is about to answer
    assert not call.state.callback_offered
    call(QueueStatus("queued", 2, 130.0, callback_offer=True))
    assert call.prompts[-2:] == [
        "You are number 2 in line. You have waited 130 seconds.",
        ENGINE.flow.text(ENGINE.flow.callback.offer, "en"),
    ]
    call(QueueStatus("queued", 2, 131.0, callback_offer=True))
    assert call.prompts.count(ENGINE.flow.text(ENGINE.flow.callback.offer, "en")) == 1
    call(k("7"))
    assert call.state.phase is Phase.QUEUED
    call(k("1#"))
    assert call.effects[-1] == RequestCallback()
    assert Hangup() not in call.effects
    assert call.state.phase is Phase.DONE and call.state.callback
    assert call.last_prompt.startswith("Thank you. You keep your place in line")


def test_connected_then_ended_by_the_agent_leads_to_the_survey() -> None:
    call = queued()(QueueStatus("connected", None, 20.0))
    assert call.last_prompt == "You are now connected with an agent."
    assert call.state.phase is Phase.CONNECTED
    call(QueueStatus("connected", None, 20.0))
    assert call.prompts.count("You are now connected with an agent.") == 1
    call(QueueStatus("ended", None, 20.0))
    assert call.prompts[-2:] == [
        "The agent has ended the call.",
        ENGINE.flow.text(ENGINE.flow.survey.csat, "en"),
    ]
    assert call.state.awaiting is Awaiting.INPUT
    call(k("4"))
    assert call.last_prompt == ENGINE.flow.text(ENGINE.flow.survey.repeat, "en")
    call(k("1"))
    assert call.effects[-1] == SubmitSurvey(csat=4, had_to_repeat=True)
    assert call.last_prompt == "Thank you for your answers. Goodbye."
    assert call.state.phase is Phase.DONE


def test_a_call_that_ends_between_two_polls_still_gets_its_survey() -> None:
    call = queued()(QueueStatus("ended", None, None), k("5#"), k("2"))
    assert call.effects[-1] == SubmitSurvey(csat=5, had_to_repeat=False)


def test_the_caller_hanging_up_on_the_agent_is_asked_the_survey() -> None:
    call = queued()(QueueStatus("connected"), CallerHangup())
    assert call.effects[-1] == Hangup()
    assert call.state.phase is Phase.SURVEY
    call(k("3"), k("2"))
    assert call.effects[-1] == SubmitSurvey(csat=3, had_to_repeat=False)


def test_hanging_up_in_the_queue_abandons_without_a_survey() -> None:
    call = queued()(QueueStatus("queued", 1, 3), CallerHangup())
    assert call.effects[-1] == Hangup()
    assert call.state.phase is Phase.DONE


def test_a_transfer_puts_the_caller_on_hold_again() -> None:
    call = queued()(QueueStatus("connected"), QueueStatus("queued", 1, 40))
    assert call.last_prompt == TRANSFER_EN
    assert call.state.phase is Phase.QUEUED
    call(QueueStatus("queued", 1, 41))
    assert call.last_prompt == "You are number 1 in line. You have waited 41 seconds."


def test_an_abandoned_call_is_over() -> None:
    call = queued()(QueueStatus("abandoned"))
    assert call.state.phase is Phase.DONE


def test_the_survey_gives_up_after_two_bad_answers() -> None:
    call = queued()(QueueStatus("ended"), k("9"))
    assert call.prompts[-2:] == [INVALID_EN, ENGINE.flow.text(ENGINE.flow.survey.csat, "en")]
    call(Speech("great"))
    assert call.last_prompt == "Thank you for calling Acme Bank. Goodbye."
    assert call.state.phase is Phase.DONE
    assert not any(isinstance(e, SubmitSurvey) for e in call.effects)


def test_the_survey_asks_again_after_one_bad_answer() -> None:
    call = queued()(QueueStatus("ended"), k("5"), k("3"), k("2"))
    assert call.effects[-1] == SubmitSurvey(csat=5, had_to_repeat=False)


def test_hanging_up_during_the_survey_drops_it() -> None:
    call = queued()(QueueStatus("ended"), k("5"), CallerHangup())
    assert call.state.phase is Phase.DONE
    assert not any(isinstance(e, SubmitSurvey | Hangup) for e in call.effects)


# Other flows: scripted branches that collect answers, hang-ups in the tree.

BRANCH = Engine(load_flow(Path(__file__).parent / "flows" / "branch.yaml"))


def test_a_scripted_branch_collects_answers_before_the_handoff() -> None:
    call = Call(BRANCH)
    assert call.prompts == ["1 lost card, 2 billing, 9 to hang up."]
    call(k("1"), k("1"), k("4321#"), Speech("It was taken from my bag on the bus"))
    assert call.handoff == Handoff(
        intent="card_lost",
        collected={
            "stolen": "yes",
            "card_last4": "4321",
            "story": "It was taken from my bag on the bus",
        },
        utterance=None,
        escalate_reason=None,
    )
    assert [s.node for s in call.steps] == ["main", "stolen", "last4", "story"]


def test_a_spoken_intent_can_lead_into_a_branch() -> None:
    call = Call(BRANCH)(Speech("I lost it"), k("2"))
    assert call.state.node == "last4"
    assert call.state.utterance == "I lost it"
    call(k("12#"), k("99999"))  # too short, too long: the branch's own on_invalid
    assert call.handoff == Handoff(
        intent="card_lost", collected={"stolen": "no"}, utterance="I lost it", escalate_reason=None
    )


def test_an_action_can_say_something_and_hang_up() -> None:
    call = Call(BRANCH)(k("2"))
    assert call.prompts[-1] == "Billing it is."  # its own words replace the transfer message
    call = Call(BRANCH)(k("9"))
    assert call.prompts[-1] == "Bye."
    assert call.effects[-1] == Hangup()
    assert call.state.phase is Phase.DONE


def test_a_words_question_refuses_keys_and_silence() -> None:
    call = Call(BRANCH)(k("1"), k("2"), k("1234"), k("5"))
    assert call.prompts[-2:] == ["Not a choice.", "Tell us what happened."]
    call(Speech("  "))
    assert call.handoff.escalate_reason == "no_match"
    assert call.handoff.collected == {"stolen": "no", "card_last4": "1234"}


@pytest.mark.parametrize("seed", range(200))
def test_random_callers_always_reach_an_end(seed: int) -> None:
    """Any path a random caller takes ends, and never records a PIN."""
    rng = random.Random(seed)
    persona = random_persona(rng)
    call = Call()
    for _ in range(50):
        if call.state.awaiting is Awaiting.VERIFICATION:
            right = call.effects[-1] == Verify("12345678", "1234")
            call(Verified(right, 3 if right else 2 - call.state.tries))
        elif call.state.awaiting is Awaiting.INPUT:
            call(random_answer(ENGINE, call.state, persona, rng, account="12345678", pin="1234"))
        else:
            break
    assert call.state.phase is Phase.QUEUED
    handoff = call.handoff
    assert (handoff.intent is None) != (handoff.escalate_reason is None)
    assert all(s.input == PIN_MASK for s in call.steps if s.node == "identify.pin")
    assert not any("1234#" in s.input for s in call.steps)
