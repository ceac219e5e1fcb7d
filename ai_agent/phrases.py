"""The few sentences the agent says without a model, in the profile's language.

Portuguese for ``pt*`` profiles, English for every other language (the safest second choice).
"""

from __future__ import annotations

_PHRASES = {
    "cannot_listen": {
        "pt": "Ainda não consigo ouvir áudios. Pode escrever a sua mensagem, por favor?",
        "en": "I cannot listen to audio messages yet. Could you write your message, please?",
    },
    "cannot_see": {
        "pt": "Ainda não consigo ver imagens ou arquivos. Pode descrever por escrito, por favor?",
        "en": "I cannot see images or files yet. Could you describe it in writing, please?",
    },
    "could_not_listen": {
        "pt": "Não consegui ouvir o seu áudio agora. Pode escrever a sua mensagem, por favor?",
        "en": "I could not listen to your audio just now. Could you write your message, please?",
    },
    "could_not_see": {
        "pt": "Não consegui abrir a sua imagem agora. Pode descrever por escrito, por favor?",
        "en": "I could not open your image just now. Could you describe it in writing, please?",
    },
    "rephrase": {
        "pt": "Não encontrei uma resposta para isso. Pode reformular a pergunta?",
        "en": "I could not find an answer to that. Could you rephrase your question?",
    },
    "from_knowledge": {
        "pt": "Encontrei isto nas nossas informações:",
        "en": "Here is what our information says:",
    },
}


def phrase(name: str, language: str) -> str:
    """The sentence ``name`` in ``language`` (a BCP 47 tag such as ``pt-BR``)."""
    by_language = _PHRASES[name]
    return by_language.get(language.split("-")[0].lower(), by_language["en"])
