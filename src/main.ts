import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';
import { reloadIntoIsolation } from './lib/isolation';

reloadIntoIsolation();
mount(App, { target: document.getElementById('app')! });
