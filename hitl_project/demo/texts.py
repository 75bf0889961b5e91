"""The invented material the demo cases are drawn from: people, regions and tiers, support topics with their
replies, refund reasons, companies and lead messages. The names, e-mail addresses and phone numbers made from them
are fictitious but shaped like real personal data, so the PII redaction has something to find.
"""

from __future__ import annotations

FIRST_NAMES = ["Anna", "Lukas", "Sofia", "Mateo", "Emma", "Noah", "Olivia", "Jonas", "Chloé", "Ravi", "Mei", "Tomás"]
LAST_NAMES = ["Schmidt", "García", "Rossi", "Nowak", "Dubois", "Jensen", "Tanaka", "Okafor", "Silva", "Murphy"]
REGIONS = ["EU", "EU", "EU", "NA", "NA", "APAC", "LATAM"]
TIERS = ["free", "standard", "standard", "gold", "gold", "platinum"]

# label -> (subject, body, the reply a good agent would draft); placeholders are filled per case.
SUPPORT_TOPICS: dict[str, list[tuple[str, str, str]]] = {
    "billing": [
        (
            "Charged twice for my subscription",
            "Hi, I was charged twice this month (two debits of {amount} EUR on {date}). Please refund one of them.",
            "Sorry about the double charge, {name}. I can see both debits and have started a refund for one.",
        ),
        (
            "Invoice {invoice} shows the wrong VAT number",
            "Our invoice {invoice} lists an old VAT number. Our accountant needs a corrected one before Friday.",
            "Thanks, {name}. I've corrected the VAT number and re-issued invoice {invoice}; it is attached.",
        ),
        (
            "Why did my monthly price go up?",
            "My plan went up from {amount} EUR without any notice. Can you explain what changed?",
            "Hi {name}, list prices changed on 1 March; as an existing customer you keep {amount} EUR until June.",
        ),
    ],
    "shipping": [
        (
            "Where is my order {order}?",
            "Order {order} was supposed to arrive on {date} and the tracking hasn't moved for four days.",
            "Hi {name}, I've opened a trace with the carrier for order {order}; you'll hear from us within 48 hours.",
        ),
        (
            "Parcel marked as delivered but not here",
            "Tracking for {order} says delivered yesterday, but nothing was left at my door or with the neighbours.",
            "Sorry, {name}. If {order} hasn't turned up by tomorrow, reply here and we'll send a replacement.",
        ),
        (
            "Wrong delivery address",
            "I typed the wrong street for order {order}. Can you still change it? New address: {street}.",
            "Thanks for letting us know, {name}. The address on order {order} has been updated before dispatch.",
        ),
    ],
    "technical": [
        (
            "App crashes when I upload a photo",
            "Since the update the iOS app closes as soon as I pick a photo to upload. iPhone 13, iOS 17.4.",
            "Thanks for the details, {name}. This is a known issue in 4.12.0; 4.12.1 with the fix ships tomorrow.",
        ),
        (
            "Can't log in after resetting my password",
            "I reset my password twice and still get 'invalid credentials'. My login is {email}.",
            "Hi {name}, I've cleared the lock on your account. Please try again with your new password.",
        ),
        (
            "CSV export is empty",
            "Exporting the March report to CSV gives a file with only the header row.",
            "Hi {name}, exports skip archived projects; untick 'active only' in the export dialog and try again.",
        ),
    ],
    "account": [
        (
            "Please change the e-mail on my account",
            "I changed jobs; please move my account from {email} to my new address. Phone to verify: {phone}.",
            "Hi {name}, for security I've sent a confirmation link to both addresses; the change applies once clicked.",
        ),
        (
            "How do I add a colleague?",
            "We bought two more seats. How do I invite my colleague to our workspace?",
            "Hi {name}, go to Settings > Team > Invite and enter their e-mail; the new seats are already active.",
        ),
        (
            "Delete my account and data",
            "Under GDPR I'd like my account and all my personal data deleted. My login is {email}.",
            "Hi {name}, we've received your erasure request and will confirm within 30 days, as the GDPR requires.",
        ),
    ],
    "cancellation": [
        (
            "I want to cancel my subscription",
            "Please cancel my subscription at the end of the current period. We've moved to another tool.",
            "Hi {name}, your subscription is cancelled and ends with the current period; you won't be charged again.",
        ),
        (
            "Cancel before the renewal on {date}",
            "Our plan renews on {date} and we do not want it to. Please confirm the cancellation in writing.",
            "Hi {name}, confirmed: your plan will not renew on {date}.",
        ),
    ],
    "feedback": [
        (
            "Love the new dashboard",
            "Just wanted to say the new dashboard saves me ten minutes every morning. Great job!",
            "Thank you, {name}! I've passed this on to our product team.",
        ),
        (
            "Feature request: dark mode",
            "Any plans for a dark mode? I work late and the white screen is hard on the eyes.",
            "Thanks, {name}: dark mode is on our roadmap and I've added your vote.",
        ),
    ],
}
SUPPORT_KEYWORDS = {
    "billing": "mentions a charge, an invoice or a price",
    "shipping": "mentions an order, tracking or delivery",
    "technical": "describes an error or something not working",
    "account": "asks to change account details or access",
    "cancellation": "asks to end the subscription",
    "feedback": "gives an opinion without asking for action",
}

REFUND_REASONS: list[tuple[str, str, str, tuple[int, int]]] = [
    # (customer's reason, the label a careful agent would give, why, days since delivery it comes after)
    ("The blender arrived with a cracked jug.", "approve", "damaged on arrival", (1, 20)),
    ("Never received the parcel, tracking stopped in the depot.", "approve", "the carrier confirms the loss", (5, 40)),
    ("Wrong size, I ordered M and got L.", "approve", "our picking error", (2, 25)),
    ("Changed my mind, the colour looks different than online.", "partial", "change of mind: minus shipping", (3, 45)),
    ("One of the three items is missing from the box.", "partial", "refund the missing item only", (1, 15)),
    ("I used it for two months and don't like it anymore.", "deny", "outside the return window", (55, 75)),
    ("Charged again after I cancelled the subscription.", "approve", "billing after cancellation", (1, 60)),
    (
        "If this isn't refunded today my lawyer will file a chargeback and report you.",
        "legal",
        "a threat of legal action or a chargeback needs the legal team",
        (1, 60),
    ),
]
REFUND_MESSAGES = {
    "approve": "Hi {name}, we've approved a full refund of {amount} {currency} for order {order}.",
    "partial": "Hi {name}, we can refund {partial} {currency} of order {order}; the shipping cost is not refundable.",
    "deny": "Hi {name}, order {order} is outside our 30-day return window, so we can't refund it, sorry.",
    "legal": "",
}

COMPANIES = [
    ("Nordlicht Logistik GmbH", "logistics"),
    ("Bluefin Dental Group", "healthcare"),
    ("Casa Verde Interiors", "retail"),
    ("Kestrel Analytics Ltd", "software"),
    ("Halvorsen & Berg Advokatfirma", "legal services"),
    ("Sunrise Bakery Co-op", "food"),
    ("Atlas Property Management", "real estate"),
    ("Mirai Robotics K.K.", "manufacturing"),
    ("Oakridge Community College", "education"),
    ("Pampa Agro S.A.", "agriculture"),
    ("Lumen Wellness Clinics", "healthcare"),
    ("Brightpath Travel", "travel"),
]
LEAD_MESSAGES: list[tuple[str, str]] = [
    ("We need to roll this out to all {employees} staff before the end of the quarter. Can we get a demo?", "hot"),
    (
        "Our current contract ends in two months and we're comparing three vendors. Pricing for {employees} seats?",
        "hot",
    ),
    ("Interested in the automation features. We're planning next year's budget; can you send material?", "warm"),
    ("Saw your webinar. Could be useful for our support team at some point.", "warm"),
    ("Just browsing, doing research for a university assignment.", "disqualified"),
    ("Do you have a free plan? We're a team of two and have no budget this year.", "cold"),
    ("Please remove us from your mailing list.", "disqualified"),
]
LEAD_SOURCES = ["website", "webinar", "referral", "trade-fair", "outbound"]
