"""The baseline of bench/browser_chat.py: the 20-line Streamlit chat over the openai SDK.

``streamlit run bench/baseline_chat.py`` with ``BENCH_OPENAI_BASE_URL`` pointing at the provider stub.
"""

import os

import streamlit as st
from openai import OpenAI

client = st.cache_resource(lambda: OpenAI(base_url=os.environ["BENCH_OPENAI_BASE_URL"], api_key="sk-bench"))()
st.session_state.setdefault("messages", [])
for message in st.session_state.messages:
    with st.chat_message(message["role"]):
        st.markdown(message["content"])
if prompt := st.chat_input("Say something"):
    st.session_state.messages.append({"role": "user", "content": prompt})
    with st.chat_message("user"):
        st.markdown(prompt)
    with st.chat_message("assistant"):
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=st.session_state.messages, stream=True)
        reply = st.write_stream(stream)
    st.session_state.messages.append({"role": "assistant", "content": reply})
